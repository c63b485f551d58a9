"""Commands on ``cmd`` reach the controller and are answered on ``cmd/result``."""

from __future__ import annotations

import contextlib
import json
import os
import tty
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from firmware_agent.agent import Agent
from firmware_agent.nxlink.link import LinkTiming
from firmware_agent.wire.frames import Frame, FrameReader
from simulators.broker import MosquittoBroker
from simulators.virtual_controller import VendRefusedError, VirtualController
from tests.agent.helpers import MACHINE, Collector, agent_settings, wait_until

CMD_TOPIC = f"nx/v1/machines/{MACHINE}/cmd"


@pytest.fixture
def running(mosquitto: MosquittoBroker,
            tmp_path: Path) -> Iterator[tuple[Agent, VirtualController, Collector]]:
    collector = Collector(mosquitto)
    vc = VirtualController({1: ("naloxone-nasal-4mg", 3, 10)},
                           timing=LinkTiming(ack_timeout_s=0.3, link_down_retry_s=0.3)).start()
    agent = Agent(agent_settings(mosquitto, tmp_path, vc.port))
    agent.start()
    wait_until(lambda: bool(collector.on("status")), what="agent online")
    yield agent, vc, collector
    agent.stop()
    vc.stop()
    collector.close()


def send(collector: Collector, payload: bytes | dict[str, object]) -> None:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    info = collector.client.publish(CMD_TOPIC, raw, qos=1)
    info.wait_for_publish(10)
    assert info.rc == mqtt.MQTT_ERR_SUCCESS


def result(collector: Collector, command_id: str) -> dict[str, object]:
    def found() -> bool:
        return any(r["command_id"] == command_id for r in collector.on("cmd/result"))

    wait_until(found, what=f"result of {command_id}")
    return next(r for r in collector.on("cmd/result") if r["command_id"] == command_id)


def test_lock_and_unlock(running: tuple[Agent, VirtualController, Collector]) -> None:
    _, vc, collector = running
    send(collector, {"command_id": "c1", "kind": "lock"})
    assert result(collector, "c1")["ok"] is True
    assert vc.locked
    with pytest.raises(VendRefusedError):
        vc.vend(1)
    send(collector, {"command_id": "c2", "kind": "unlock"})
    assert result(collector, "c2")["ok"] is True
    assert not vc.locked


def test_planogram_reaches_ledger_and_controller(
    running: tuple[Agent, VirtualController, Collector],
) -> None:
    _, vc, collector = running
    send(collector, {"command_id": "p1", "kind": "planogram", "slots": [
        {"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 12},
        {"slot": 2, "product": "fentanyl-test-strip", "capacity": 40},
    ]})
    assert result(collector, "p1")["ok"] is True
    assert vc.capacities == {1: 12, 2: 40}
    assert vc.products[2] == "fentanyl-test-strip"

    def snapshot_has_planogram() -> bool:
        snaps = collector.on("stock")
        if not snaps:
            return False
        newest = max(snaps, key=lambda s: s["revision"])
        return {s["slot"]: s["capacity"] for s in newest["slots"]} == {1: 12, 2: 40}

    wait_until(snapshot_has_planogram, what="stock snapshot with the planogram")


def test_stock_request_reconciles_with_the_controller(
    running: tuple[Agent, VirtualController, Collector],
) -> None:
    _, _, collector = running
    send(collector, {"command_id": "s1", "kind": "stock_request"})
    assert result(collector, "s1")["ok"] is True

    def ledger_matches() -> bool:
        snaps = collector.on("stock")
        newest = max(snaps, key=lambda s: s["revision"]) if snaps else {"slots": []}
        return {s["slot"]: s["count"] for s in newest["slots"]} == {1: 3}

    wait_until(ledger_matches, what="snapshot with the controller's count")


def test_config_and_bad_commands_get_answers(
    running: tuple[Agent, VirtualController, Collector],
) -> None:
    agent, _, collector = running
    send(collector, {"command_id": "k1", "kind": "config", "heartbeat_s": 2})
    assert result(collector, "k1")["ok"] is True
    assert agent._heartbeat_s == 2.0
    send(collector, {"command_id": "b1", "kind": "self_destruct"})
    bad = result(collector, "b1")
    assert bad["ok"] is False
    assert "invalid command" in str(bad["error"])
    send(collector, b"\xff not json")
    send(collector, {"command_id": "l2", "kind": "lock"})
    assert result(collector, "l2")["ok"] is True  # still alive after garbage


def test_unanswered_command_fails_and_is_never_sent_later(
    mosquitto: MosquittoBroker, tmp_path: Path,
) -> None:
    # A port with nothing behind it: the master end is read only by this test.
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    collector = Collector(mosquitto)
    agent = Agent(agent_settings(mosquitto, tmp_path, os.ttyname(slave), command_timeout_s=1.0))
    agent.start()
    try:
        wait_until(lambda: bool(collector.on("status")), what="agent online")
        send(collector, {"command_id": "u1", "kind": "unlock"})
        answer = result(collector, "u1")
        assert answer["ok"] is False
        assert "did not acknowledge" in str(answer["error"])
        wait_until(lambda: agent.driver.counters()["retransmits"] >= 2, what="HELLO retries")
    finally:
        agent.stop()
        collector.close()
    written = b""
    with contextlib.suppress(BlockingIOError):
        written = os.read(master, 65536)
    os.close(master)
    os.close(slave)
    types = {packet.type for packet in FrameReader().feed(written) if isinstance(packet, Frame)}
    assert types == {"HELLO"}
