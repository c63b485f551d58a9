"""The ingest worker against a real Mosquitto: subscriptions, manual acks, dead letters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from backend.ingest import IngestWorker
from backend.ingest.parse import Message
from backend.ingest.store import BatchResult
from backend.models import Alert, DeadLetter, DispenseEvent, Machine
from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel, machine_topic
from simulators.broker import MosquittoBroker
from tests.backend.conftest import ingest_settings, register
from tests.backend.helpers import (
    WAIT_S,
    events_topic,
    fresh,
    machine_publisher,
    publish_vends,
    vend,
    wait_until,
)


def _count(session: Session, query: object) -> int:
    fresh(session)
    return int(session.execute(query).scalar_one())  # type: ignore[call-overload]


@pytest.fixture
def worker(migrated_url: str, mosquitto: MosquittoBroker) -> Iterator[IngestWorker]:
    """An ingest worker (index 0) subscribed on the test broker."""
    instance = IngestWorker(ingest_settings(migrated_url, mosquitto))
    instance.start()
    try:
        assert instance.wait_subscribed(WAIT_S), "subscriptions were not granted"
        yield instance
    finally:
        instance.stop()


def test_events_from_a_machine_are_committed(
    worker: IngestWorker, session: Session, mosquitto: MosquittoBroker
) -> None:
    register(session, "test-001", count=10)
    publish_vends(mosquitto, "test-001", range(1, 51))
    stored = select(func.count()).select_from(DispenseEvent)
    wait_until(lambda: _count(session, stored) == 50, what="50 events committed")
    assert worker.metrics.committed._value.get() == 50


def test_malformed_payload_is_dead_lettered_and_ingest_goes_on(
    worker: IngestWorker, session: Session, mosquitto: MosquittoBroker
) -> None:
    register(session, "test-002", count=10)
    publisher = machine_publisher(mosquitto, "test-002")
    try:
        publisher.publish_all([
            (events_topic("test-002"), b"\xff\xfe not json"),
            (events_topic("test-002"), b'{"kind":"vend"}'),
            (events_topic("test-002"), vend("test-002", 1).to_bytes()),
        ])
    finally:
        publisher.close()
    wait_until(lambda: _count(session, select(func.count()).select_from(DispenseEvent)) == 1,
               what="the valid event after the bad ones")
    letters = _count(session, select(func.count()).select_from(DeadLetter))
    assert letters == 2


def test_retained_status_and_last_will_reach_the_backend(
    worker: IngestWorker, session: Session, mosquitto: MosquittoBroker
) -> None:
    register(session, "test-003")
    publisher = machine_publisher(mosquitto, "test-003")
    status_topic = machine_topic("test-003", Channel.STATUS)
    online = payloads.Status(machine_id="test-003", boot_id=1, state=payloads.MachineState.ONLINE)
    publisher.publish(status_topic, online.to_bytes(), retain=True)
    publisher.wait_acked(1)

    def status() -> str:
        fresh(session)
        machine = session.get(Machine, "test-003")
        return machine.status if machine else ""

    wait_until(lambda: status() == "online", what="online status")
    offline = payloads.Status(machine_id="test-003", boot_id=1, state=payloads.MachineState.OFFLINE)
    publisher.publish(status_topic, offline.to_bytes(), retain=True)
    publisher.wait_acked(2)
    publisher.close()
    wait_until(lambda: status() == "offline", what="offline status")
    open_offline = select(func.count()).select_from(Alert).where(
        Alert.type == "machine_offline", Alert.status == "open")
    assert _count(session, open_offline) == 1


@pytest.mark.allow_logged_errors
def test_a_failing_message_is_isolated_and_ingest_goes_on(
    worker: IngestWorker, session: Session, mosquitto: MosquittoBroker
) -> None:
    register(session, "test-004", count=100)
    real_write = worker.writer.write

    def write_with_a_bug(writing: Session, messages: list[Message], now: datetime) -> BatchResult:
        if any(b'"seq":13,' in m.payload for m in messages):
            raise RuntimeError("simulated bug on seq 13")
        return real_write(writing, messages, now)

    worker.writer.write = write_with_a_bug  # type: ignore[method-assign]
    publish_vends(mosquitto, "test-004", range(1, 31))
    stored = select(func.count()).select_from(DispenseEvent)
    wait_until(lambda: _count(session, stored) == 29, what="every event but the poisoned one")
    letters = select(DeadLetter.reason)
    wait_until(lambda: bool(fresh(session).execute(letters).scalars().all()), what="dead letter")
    reasons = session.execute(letters).scalars().all()
    assert reasons == ["not storable: RuntimeError: simulated bug on seq 13"]


@pytest.mark.allow_logged_errors
def test_an_exception_in_the_message_callback_does_not_stop_the_loop(
    worker: IngestWorker, session: Session, mosquitto: MosquittoBroker,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    register(session, "test-005", count=100)
    real_put = worker.inbox.put_nowait
    calls = {"n": 0}

    def failing_once(item: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated failure inside on_message")
        real_put(item)  # type: ignore[arg-type]

    monkeypatch.setattr(worker.inbox, "put_nowait", failing_once)
    publish_vends(mosquitto, "test-005", range(1, 11))
    stored = select(func.count()).select_from(DispenseEvent)
    # The first message was lost inside the callback (never acked, so the broker
    # keeps it for the next connection); the network loop kept delivering the rest.
    wait_until(lambda: _count(session, stored) == 9, what="the nine after the failure")
    assert worker.client.connected.is_set()
