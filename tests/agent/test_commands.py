"""Commands on ``cmd`` reach the controller and are answered on ``cmd/result``."""

from __future__ import annotations

import contextlib
import os
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_agent.agent import Agent
from firmware_agent.nxlink.link import LinkTiming
from firmware_agent.wire.frames import Ack, Frame, FrameReader, encode
from simulators.broker import MosquittoBroker
from simulators.virtual_controller import VendRefusedError, VirtualController
from tests.agent.helpers import (
    AgentProcess,
    Collector,
    agent_settings,
    command_result,
    send_command,
    wait_until,
    write_config,
)


@contextlib.contextmanager
def _online(mosquitto: MosquittoBroker, tmp_path: Path,
            vc: VirtualController) -> Iterator[tuple[Agent, Collector]]:
    """Start ``vc`` and an agent on it; yield once the agent is online."""
    collector = Collector(mosquitto)
    vc.start()
    agent = Agent(agent_settings(mosquitto, tmp_path, vc.port))
    agent.start()
    try:
        wait_until(lambda: bool(collector.on("status")), what="agent online")
        yield agent, collector
    finally:
        agent.stop()
        vc.stop()
        collector.close()


@pytest.fixture
def running(mosquitto: MosquittoBroker,
            tmp_path: Path) -> Iterator[tuple[Agent, VirtualController, Collector]]:
    vc = VirtualController({1: ("naloxone-nasal-4mg", 3, 10)},
                           timing=LinkTiming(ack_timeout_s=0.3, link_down_retry_s=0.3))
    with _online(mosquitto, tmp_path, vc) as (agent, collector):
        yield agent, vc, collector


def test_lock_and_unlock(running: tuple[Agent, VirtualController, Collector]) -> None:
    _, vc, collector = running
    send_command(collector, {"command_id": "c1", "kind": "lock"})
    assert command_result(collector, "c1")["ok"] is True
    assert vc.locked
    with pytest.raises(VendRefusedError):
        vc.vend(1)
    send_command(collector, {"command_id": "c2", "kind": "unlock"})
    assert command_result(collector, "c2")["ok"] is True
    assert not vc.locked


def test_a_repeated_command_id_is_carried_out_once_and_answered_again(
    running: tuple[Agent, VirtualController, Collector],
) -> None:
    _, vc, collector = running
    send_command(collector, {"command_id": "r1", "kind": "authorize_vend", "slot": 1,
                             "ttl_s": 600})
    first = command_result(collector, "r1")
    # The backend resends until it hears back: the copy must not reach the controller.
    send_command(collector, {"command_id": "r1", "kind": "authorize_vend", "slot": 1,
                             "ttl_s": 600})
    wait_until(lambda: len([r for r in collector.on("cmd/result") if r["command_id"] == "r1"])
               == 2, what="the repeat answered")
    answers = [r for r in collector.on("cmd/result") if r["command_id"] == "r1"]
    assert answers == [first, first]
    assert [f.type for f in vc.received if f.type == "AUTH"] == ["AUTH"]


def test_planogram_reaches_ledger_and_controller(
    running: tuple[Agent, VirtualController, Collector],
) -> None:
    _, vc, collector = running
    send_command(collector, {"command_id": "p1", "kind": "planogram", "slots": [
        {"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 12},
        {"slot": 2, "product": "fentanyl-test-strip", "capacity": 40},
    ]})
    assert command_result(collector, "p1")["ok"] is True
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
    send_command(collector, {"command_id": "s1", "kind": "stock_request"})
    assert command_result(collector, "s1")["ok"] is True

    def ledger_matches() -> bool:
        snaps = collector.on("stock")
        newest = max(snaps, key=lambda s: s["revision"]) if snaps else {"slots": []}
        return {s["slot"]: s["count"] for s in newest["slots"]} == {1: 3}

    wait_until(ledger_matches, what="snapshot with the controller's count")


def test_config_and_bad_commands_get_answers(
    running: tuple[Agent, VirtualController, Collector],
) -> None:
    agent, _, collector = running
    send_command(collector, {"command_id": "k1", "kind": "config", "heartbeat_s": 2})
    assert command_result(collector, "k1")["ok"] is True
    assert agent._heartbeat_s == 2.0
    send_command(collector, {"command_id": "b1", "kind": "self_destruct"})
    bad = command_result(collector, "b1")
    assert bad["ok"] is False
    assert "invalid command" in str(bad["error"])
    send_command(collector, b"\xff not json")
    send_command(collector, {"command_id": "l2", "kind": "lock"})
    assert command_result(collector, "l2")["ok"] is True  # still alive after garbage


class ManualClock:
    """The virtual controller's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gated(mosquitto: MosquittoBroker,
          tmp_path: Path) -> Iterator[tuple[VirtualController, Collector, ManualClock]]:
    """A machine that vends only what the agent authorised, on a clock the test moves."""
    clock = ManualClock()
    vc = VirtualController({1: ("naloxone-nasal-4mg", 5, 10), 2: ("naloxone-im", 5, 10)},
                           gated=True, clock=clock)
    with _online(mosquitto, tmp_path, vc) as (_, collector):
        yield vc, collector, clock


def auth_frames(vc: VirtualController) -> list[tuple[str, ...]]:
    """Return the fields of every AUTH frame the controller received."""
    return [frame.fields for frame in vc.received if frame.type == "AUTH"]


def test_authorize_vend_lets_one_vend_through_a_gated_machine(
    gated: tuple[VirtualController, Collector, ManualClock],
) -> None:
    vc, collector, clock = gated
    with pytest.raises(VendRefusedError):
        vc.vend(1)
    send_command(collector, {"command_id": "a1", "kind": "authorize_vend", "slot": 1,
                             "ttl_s": 30})
    answer = command_result(collector, "a1")
    assert answer["ok"] is True
    assert answer["error"] is None
    assert auth_frames(vc) == [("1", "30")]
    with pytest.raises(VendRefusedError):
        vc.vend(2)  # the authorisation is for slot 1 only
    clock.now += 29
    vc.vend(1)
    with pytest.raises(VendRefusedError):
        vc.vend(1)  # one vend per authorisation
    wait_until(lambda: len(collector.event_ids("vend")) == 1, what="the authorised vend")
    assert [e["slot"] for e in collector.on("events")] == [1]


def test_authorize_vend_expires_after_its_ttl(
    gated: tuple[VirtualController, Collector, ManualClock],
) -> None:
    vc, collector, clock = gated
    send_command(collector, {"command_id": "a2", "kind": "authorize_vend", "slot": 2,
                             "ttl_s": 5})
    assert command_result(collector, "a2")["ok"] is True
    clock.now += 6
    with pytest.raises(VendRefusedError):
        vc.vend(2)


@pytest.mark.parametrize("bad", [
    {"slot": 1, "ttl_s": 0},
    {"slot": 1, "ttl_s": 3601},
    {"slot": 1, "ttl_s": 2.5},
    {"slot": 0, "ttl_s": 30},
    {"slot": 100, "ttl_s": 30},
    {"slot": 1},
    {"ttl_s": 30},
])
def test_authorize_vend_with_bad_fields_is_refused_and_never_sent(
    gated: tuple[VirtualController, Collector, ManualClock], bad: dict[str, object],
) -> None:
    vc, collector, _ = gated
    send_command(collector, {"command_id": "bad-auth", "kind": "authorize_vend", **bad})
    answer = command_result(collector, "bad-auth")
    assert answer["ok"] is False
    assert str(answer["error"]).startswith("invalid command: ")
    # A good command after it goes through: only that one reaches the controller.
    send_command(collector, {"command_id": "good-auth", "kind": "authorize_vend", "slot": 1,
                             "ttl_s": 60})
    assert command_result(collector, "good-auth")["ok"] is True
    assert auth_frames(vc) == [("1", "60")]


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
        send_command(collector, {"command_id": "u1", "kind": "unlock"})
        answer = command_result(collector, "u1")
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


class HelloOnlyController:
    """The controller end of a pty, driven by hand: it ACKs the agent's HELLO and nothing else."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self.types: list[str] = []
        self._reader = FrameReader()

    def poll(self) -> None:
        """Read what the agent wrote; ACK each HELLO so that the agent may send more."""
        with contextlib.suppress(BlockingIOError):
            data = os.read(self.master, 65536)
            for packet in self._reader.feed(data):
                if isinstance(packet, Frame):
                    self.types.append(packet.type)
                    if packet.type == "HELLO":
                        os.write(self.master, encode(Ack(packet.seq)))

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


def test_a_command_in_hand_when_the_agent_is_killed_is_carried_out_after_restart(
    mosquitto: MosquittoBroker, tmp_path: Path,
) -> None:
    collector = Collector(mosquitto)
    line = HelloOnlyController()
    # The UNLOCK is never ACKed and may wait for minutes: the agent is busy with it when killed.
    patient = ("command_timeout_s = 120", "link_max_tries = 1000")
    config = tmp_path / "agent.toml"
    write_config(config, mosquitto, tmp_path / "data", line.port, patient)
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        wait_until(lambda: bool(collector.on("status")), what="agent online")
        send_command(collector, {"command_id": "k1", "kind": "unlock"})

        def unlock_on_the_line() -> bool:
            line.poll()
            return "UNLOCK" in line.types

        wait_until(unlock_on_the_line, what="the agent carrying out k1")
        agent.kill()
    finally:
        line.close()
    assert not [r for r in collector.on("cmd/result") if r["command_id"] == "k1"]
    with VirtualController({1: ("naloxone-nasal-4mg", 3, 10)}) as vc:
        vc.locked = True
        write_config(config, mosquitto, tmp_path / "data", vc.port)
        agent = AgentProcess(config, tmp_path / "agent.log")
        try:
            # Unacknowledged, k1 stayed in the agent's session and comes again.
            answer = command_result(collector, "k1")
            assert answer["ok"] is True
            assert not vc.locked
        finally:
            assert agent.terminate() == 0
            collector.close()
    assert [r["command_id"] for r in collector.on("cmd/result")] == ["k1"]
    assert [f.type for f in vc.received].count("UNLOCK") == 1


def test_a_vend_refused_while_locked_is_reported_and_takes_nothing(
    running: tuple[Agent, VirtualController, Collector],
) -> None:
    agent, vc, collector = running
    vc.report_refusals = True  # docs/nxlink.md 7.1: VEND,<slot>,refused,0
    vc.restock(1, 3)  # the ledger knows the count, so a dispense would show
    wait_until(lambda: bool(collector.event_ids("restock")), what="the restock")
    send_command(collector, {"command_id": "r1", "kind": "lock"})
    assert command_result(collector, "r1")["ok"] is True
    with pytest.raises(VendRefusedError):
        vc.vend(1)
    wait_until(lambda: bool(collector.event_ids("vend")), what="the refused vend")
    [event] = [e for e in collector.on("events") if e["kind"] == "vend"]
    assert (event["slot"], event["result"], event["drop_confirmed"]) == (1, "refused", False)
    assert vc.vends_made == 0
    assert agent.processor.ledger.slots[1].count == 3  # not a dispense: nothing taken off
