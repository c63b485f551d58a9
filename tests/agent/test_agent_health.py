"""Heartbeat telemetry, status with firmware, and a controller that comes and goes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_agent.agent import Agent
from firmware_agent.nxlink.link import LinkTiming
from simulators.broker import MosquittoBroker
from simulators.virtual_controller import VirtualController
from tests.agent.helpers import Collector, agent_settings, wait_until

FAST_LINK = LinkTiming(ack_timeout_s=0.3, link_down_retry_s=0.3)
HEARTBEAT_S = 0.3


@pytest.fixture
def collector(mosquitto: MosquittoBroker) -> Iterator[Collector]:
    c = Collector(mosquitto)
    yield c
    c.close()


def test_heartbeat_reports_temperature_door_link_and_outbox(
    mosquitto: MosquittoBroker, collector: Collector, tmp_path: Path,
) -> None:
    with VirtualController(timing=FAST_LINK, firmware="vc-2.3") as vc:
        agent = Agent(agent_settings(mosquitto, tmp_path, vc.port, heartbeat_s=HEARTBEAT_S))
        agent.start()
        try:
            vc.swing_temperature([22.0, 27.5, 31.5])
            vc.open_door()

            def heartbeat_sees_it() -> bool:
                return any(t["temperature_c"] == 31.5 and t["door"] == "open"
                           for t in collector.on("telemetry"))

            wait_until(heartbeat_sees_it, what="telemetry with 31.5 C and the door open")
            wait_until(lambda: any(s["firmware"] == "vc-2.3" for s in collector.on("status")),
                       what="status naming the controller firmware")
        finally:
            agent.stop()
    beat = next(t for t in collector.on("telemetry") if t["temperature_c"] == 31.5)
    assert beat["firmware"] == "vc-2.3"
    assert beat["uptime_s"] > 0
    assert beat["outbox_depth"] >= 0
    assert {"bad_frames", "retransmits", "duplicates", "outbox_dropped"} <= set(beat["link"])
    kinds = [(e["kind"], e.get("excursion"), e.get("state")) for e in collector.on("events")]
    # Only the crossing out of 15-25 C is an event; the heartbeat has every reading.
    assert [k for k in kinds if k[0] == "temperature"] == [("temperature", True, None)]
    assert ("door", None, "open") in kinds


def test_controller_plugged_in_late_and_unplugged(
    mosquitto: MosquittoBroker, collector: Collector, tmp_path: Path,
) -> None:
    # A stable device name (like a udev symlink) that does not exist yet.
    link = tmp_path / "nx-controller"
    agent = Agent(agent_settings(mosquitto, tmp_path / "data", str(link),
                                 heartbeat_s=HEARTBEAT_S))
    agent.start()
    try:
        # No controller: MQTT and heartbeats carry on regardless.
        wait_until(lambda: len(collector.on("telemetry")) >= 2, what="heartbeats without a port")
        first = VirtualController(timing=FAST_LINK).start()
        os.symlink(first.port, link)
        first.vend(1)
        wait_until(lambda: len(set(collector.event_ids("vend"))) == 1, what="vend after plug-in")
        # Unplugged: the agent notices, and a new controller on the same name is picked up.
        first.stop()
        link.unlink()
        second = VirtualController(timing=FAST_LINK, boot_counter=5).start()
        os.symlink(second.port, link)
        second.vend(1)
        wait_until(lambda: len(set(collector.event_ids("vend"))) == 2, what="vend after replug")
        wait_until(lambda: second.unacked == 0, what="second controller acknowledged")
        second.stop()
    finally:
        agent.stop()
