"""The working path: virtual controller on a pty -> agent -> real Mosquitto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_agent.agent import Agent
from firmware_agent.nxlink.link import LinkTiming
from simulators.broker import MosquittoBroker
from simulators.virtual_controller import VirtualController
from tests.agent.helpers import MACHINE, Collector, agent_settings, wait_until

FAST_LINK = LinkTiming(ack_timeout_s=0.3, link_down_retry_s=0.3)
SLOTS = {1: ("naloxone-nasal-4mg", 8, 10), 2: ("fentanyl-test-strip", 20, 50)}


@pytest.fixture
def controller() -> Iterator[VirtualController]:
    with VirtualController(SLOTS, timing=FAST_LINK) as vc:
        yield vc


@pytest.fixture
def collector(mosquitto: MosquittoBroker) -> Iterator[Collector]:
    c = Collector(mosquitto)
    yield c
    c.close()


def test_vends_restock_and_status_reach_the_broker(
    mosquitto: MosquittoBroker, controller: VirtualController, collector: Collector,
    tmp_path: Path,
) -> None:
    agent = Agent(agent_settings(mosquitto, tmp_path, controller.port))
    agent.start()
    try:
        wait_until(lambda: any(s["state"] == "online" for s in collector.on("status")),
                   what="online status")
        controller.restock(1, 10)
        for _ in range(5):
            controller.vend(1)
        controller.vend(2)
        wait_until(lambda: len(set(collector.event_ids("vend"))) == 6, what="6 vend events")
        wait_until(lambda: controller.unacked == 0, what="controller frames acknowledged")
        wait_until(lambda: agent.outbox_depth == 0, what="outbox drained")

        vends = [e for e in collector.on("events") if e["kind"] == "vend"]
        assert {(e["slot"], e["result"]) for e in vends} == {(1, "ok"), (2, "ok")}
        assert all(e["machine_id"] == MACHINE and e["boot_id"] == agent.boot_id for e in vends)
        assert all(e["drop_confirmed"] for e in vends)
        restocks = [e for e in collector.on("events") if e["kind"] == "restock"]
        assert [(e["slot"], e["count"]) for e in restocks] == [(1, 10)]
        # Sequence numbers: restock first, then the six vends, consecutive.
        seqs = sorted({e["seq"] for e in collector.on("events")})
        assert seqs == list(range(seqs[0], seqs[0] + 7))

        def latest_stock() -> dict[int, int | None]:
            snaps = collector.on("stock")
            newest = max(snaps, key=lambda s: s["revision"]) if snaps else {"slots": []}
            return {s["slot"]: s["count"] for s in newest["slots"]}

        # The ledger started empty: restock set slot 1 to 10, five vends took 5;
        # nobody has said what slot 2 holds, so the snapshot says "unknown"
        # rather than claim it is empty.
        wait_until(lambda: latest_stock() == {1: 5, 2: None},
                   what="stock snapshot 1:5, slot 2 unknown")
    finally:
        agent.stop()
    wait_until(lambda: collector.on("status")[-1]["state"] == "offline",
               what="offline status from the will after stop")


def test_agent_restart_keeps_seq_and_bumps_boot_id(
    mosquitto: MosquittoBroker, controller: VirtualController, collector: Collector,
    tmp_path: Path,
) -> None:
    settings = agent_settings(mosquitto, tmp_path, controller.port)
    first = Agent(settings)
    first.start()
    controller.vend(1)
    wait_until(lambda: len(collector.event_ids("vend")) >= 1, what="first vend")
    wait_until(lambda: first.outbox_depth == 0, what="first outbox drained")
    first.stop()

    second = Agent(settings)
    assert second.boot_id == first.boot_id + 1
    second.start()
    try:
        controller.vend(1)
        wait_until(lambda: len(set(collector.event_ids("vend"))) == 2, what="second vend")
    finally:
        second.stop()
    vends = sorted({(e["boot_id"], e["seq"]) for e in collector.on("events")
                    if e["kind"] == "vend"})
    assert vends[0][0] == first.boot_id
    assert vends[1][0] == second.boot_id
    assert vends[1][1] == vends[0][1] + 1


def test_fresh_store_starts_boot_ids_at_the_clock(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from firmware_agent.config import AgentSettings

    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    settings = AgentSettings(machine_id=MACHINE, serial_port="loop://", data_dir=tmp_path)
    first = Agent(settings, clock=lambda: now)
    first.stop()  # never started: stopping is still clean
    second = Agent(settings, clock=lambda: now)
    second.store.close()
    assert first.boot_id == int(now.timestamp())
    assert second.boot_id == first.boot_id + 1
