"""Helpers for the backend tests: paced publishing, payload builders."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from sqlmodel import Session

from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel, machine_topic
from simulators.broker import MosquittoBroker
from tests.conftest import TEST_MACHINES
from tests.waiting import wait_until

WAIT_S = 30.0
"""Generous deadline: the machine has 2 cores shared with other test runs."""
MAX_INFLIGHT = 100
"""QoS 1 publishes a test client has outstanding at once (paced by PUBACKs)."""
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


class PacedPublisher:
    """A machine's MQTT v5 connection that publishes QoS 1 with a bounded number in flight."""

    def __init__(self, host: str, port: int, username: str, password: str,
                 max_inflight: int = MAX_INFLIGHT, timeout: float = WAIT_S) -> None:
        self.timeout = timeout
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(max_inflight)
        self._slots = threading.Semaphore(max_inflight)
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self.acked = 0
        self.refused: list[str] = []
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            raise AssertionError(f"{username} could not connect")

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode,
                    _p: object) -> None:
        if not reason.is_failure:
            self._connected.set()

    def _on_publish(self, _c: mqtt.Client, _u: object, _mid: int, reason: ReasonCode,
                    _p: object) -> None:
        with self._lock:
            self.acked += 1
            if reason.is_failure:
                self.refused.append(str(reason))
        self._slots.release()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1, waiting for a free in-flight slot first."""
        if not self._slots.acquire(timeout=self.timeout):
            raise AssertionError("no PUBACK within the deadline")
        self.client.publish(topic, payload, qos=1, retain=retain)

    def publish_all(self, items: Iterable[tuple[str, bytes]]) -> int:
        """Publish every (topic, payload) and wait for all PUBACKs; return how many."""
        sent = 0
        for topic, payload in items:
            self.publish(topic, payload)
            sent += 1
        self.wait_acked(sent)
        return sent

    def wait_acked(self, total: int) -> None:
        """Wait until ``total`` publishes have been acknowledged in all."""
        wait_until(lambda: self.acked >= total, timeout=self.timeout, what=f"{total} PUBACKs")

    def close(self) -> None:
        """Disconnect cleanly."""
        self.client.disconnect()
        self.client.loop_stop()


def vend(machine_id: str, seq: int, slot: int = 1, *, boot_id: int = 1,
         result: payloads.VendResult = payloads.VendResult.OK,
         at: datetime | None = None) -> payloads.VendEvent:
    """Build a vend event."""
    return payloads.VendEvent(machine_id=machine_id, boot_id=boot_id, seq=seq,
                              device_time=at or T0 + timedelta(seconds=seq), slot=slot,
                              result=result, drop_confirmed=True)


def restock_event(machine_id: str, seq: int, slot: int, count: int, *, boot_id: int = 1,
                  at: datetime | None = None) -> payloads.RestockEvent:
    """Build a restock event."""
    return payloads.RestockEvent(machine_id=machine_id, boot_id=boot_id, seq=seq,
                                 device_time=at or T0 + timedelta(seconds=seq), slot=slot,
                                 count=count)


def events_topic(machine_id: str) -> str:
    """Return a machine's events topic."""
    return machine_topic(machine_id, Channel.EVENTS)


def machine_publisher(broker: MosquittoBroker, machine_id: str,
                      password: str | None = None) -> PacedPublisher:
    """Connect as a test machine (its id is its username)."""
    return PacedPublisher(broker.host, broker.port, machine_id,
                          password or TEST_MACHINES[machine_id])


def publish_vends(broker: MosquittoBroker, machine_id: str, seqs: Iterable[int],
                  password: str | None = None) -> int:
    """Publish vend events ``seqs`` as a machine, wait for every PUBACK; return how many."""
    publisher = machine_publisher(broker, machine_id, password)
    try:
        return publisher.publish_all(
            (events_topic(machine_id), vend(machine_id, seq).to_bytes()) for seq in seqs)
    finally:
        publisher.close()


def fresh(session: Session) -> Session:
    """End the session's read snapshot and forget loaded rows, to see what others committed."""
    session.rollback()
    session.expire_all()
    return session
