"""A command is acknowledged to the broker only after its result is in the durable outbox.

The agent runs against a fake paho client here, so the order of "result
stored" and "PUBACK sent" can be observed exactly; the command tests in
``test_commands.py`` and the kill -9 test below show the same through a real
Mosquitto.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from firmware_agent.agent import Agent
from firmware_agent.config import AgentSettings
from firmware_agent.drivers.base import Batch, CommandOutcome, ControllerDriver
from firmware_agent.uplink import CommandDelivery


class QuietDriver(ControllerDriver):
    """A controller that reports nothing and accepts every lock."""

    name = "quiet"

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self, timeout_s: float) -> Batch:
        return Batch()

    def commit(self, batch: Batch) -> None:
        pass

    def lock(self, locked: bool) -> CommandOutcome:
        return CommandOutcome(ok=True)


class FakeClient:
    """Stands in for paho: records each ack with the results committed on disk at that moment."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.acks: list[tuple[int, int, list[str]]] = []

    def committed_results(self) -> list[str]:
        # A second connection sees only what is committed: what a crash would leave.
        with closing(sqlite3.connect(self.db)) as conn:
            rows = conn.execute(
                "SELECT payload FROM outbox WHERE topic LIKE '%/cmd/result' ORDER BY id").fetchall()
        return [json.loads(payload)["command_id"] for (payload,) in rows]

    def ack(self, mid: int, qos: int) -> mqtt.MQTTErrorCode:
        self.acks.append((mid, qos, self.committed_results()))
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    # Never started: no broker is needed, the command path is driven by hand.
    settings = AgentSettings(machine_id="test-001", serial_port="loop://", data_dir=tmp_path)
    return Agent(settings, driver=QuietDriver())


@pytest.fixture
def client(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient(agent.store.path)
    monkeypatch.setattr(agent.uplink, "_client", fake)
    return fake


def delivery(payload: bytes | dict[str, object], mid: int = 7, qos: int = 1,
             generation: int = 0) -> CommandDelivery:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return CommandDelivery(raw, mid, qos, generation)


def test_the_ack_follows_the_durable_result(agent: Agent, client: FakeClient) -> None:
    agent._carry_out(delivery({"command_id": "c1", "kind": "lock"}, mid=7))
    agent._carry_out(delivery({"command_id": "c2", "kind": "self_destruct"}, mid=8))
    assert client.acks == [(7, 1, ["c1"]), (8, 1, ["c1", "c2"])]


def test_an_unanswerable_command_is_acknowledged(agent: Agent, client: FakeClient) -> None:
    # No command id: nothing to answer, and a resend could not change that.
    agent._carry_out(delivery(b"\xff not json", mid=9))
    assert client.acks == [(9, 1, [])]


def test_qos0_commands_need_no_ack(agent: Agent, client: FakeClient) -> None:
    agent._carry_out(delivery({"command_id": "c3", "kind": "lock"}, qos=0))
    assert client.acks == []
    assert client.committed_results() == ["c3"]


@pytest.mark.allow_logged_errors
def test_a_result_that_cannot_be_stored_leaves_the_command_unacknowledged(
    agent: Agent, client: FakeClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full_disk(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(agent.store, "append", full_disk)
    agent._carry_out(delivery({"command_id": "c4", "kind": "lock"}))
    assert client.acks == []


def test_a_command_from_an_earlier_connection_is_not_acknowledged_on_this_one(
    agent: Agent, client: FakeClient,
) -> None:
    uplink = agent.uplink
    old = delivery({"command_id": "c5", "kind": "lock"}, mid=11, generation=0)
    # The connection drops while the command is being carried out.
    uplink._on_disconnect(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), None,
                          mqtt.DisconnectFlags(False), ReasonCode(PacketTypes.DISCONNECT), None)
    agent._carry_out(old)
    assert client.acks == []
    assert client.committed_results() == ["c5"]  # answered all the same
