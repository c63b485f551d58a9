"""A machine that sends junk: its dead letters are rationed, counted, alerted and pruned.

Real Mosquitto, the real ingest worker, SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from backend.ingest import IngestWorker
from backend.ingest.dead_letters import dead_letter_digest
from backend.models import (
    Alert,
    AlertStatus,
    AlertType,
    DeadLetter,
    DeadLetterDrops,
    DispenseEvent,
    utcnow,
)
from simulators.broker import MosquittoBroker
from tests.backend.conftest import ingest_settings, register
from tests.backend.helpers import (
    WAIT_S,
    events_topic,
    fresh,
    machine_publisher,
    vend,
    wait_until,
)

FLOODER, NEIGHBOUR, STRANGER = "test-001", "test-002", "test-003"
JUNK_MESSAGES, JUNK_BYTES = 300, 60 * 1024
VALID_EVENTS = 500
DEFAULT_QUOTA_BYTES = 1024 * 1024
FLOOD_WAIT_S = 120.0
"""18 MB through the broker and the worker on a shared 2-core machine."""


def junk() -> bytes:
    """A distinct (random), incompressible malformed message of JUNK_BYTES."""
    return b"{" + os.urandom(JUNK_BYTES - 1)


def scalar(session: Session, query: object) -> int:
    fresh(session)
    return int(session.execute(query).scalar_one() or 0)  # type: ignore[call-overload]


def letters_of(machine: str) -> object:
    return select(func.count()).select_from(DeadLetter).where(DeadLetter.machine_id == machine)


def publish_in_thread(broker: MosquittoBroker, machine: str,
                      items: list[tuple[str, bytes]]) -> Callable[[], None]:
    """Publish ``items`` as ``machine`` on a thread of its own; return a join that re-raises."""
    failure: list[BaseException] = []

    def run() -> None:
        publisher = machine_publisher(broker, machine)
        try:
            publisher.publish_all(items)
        except BaseException as exc:  # handed to the test thread below
            failure.append(exc)
        finally:
            publisher.close()

    thread = threading.Thread(target=run, name=f"publish-{machine}")
    thread.start()

    def join() -> None:
        thread.join(FLOOD_WAIT_S)
        assert not thread.is_alive(), f"{machine} still publishing"
        if failure:
            raise failure[0]

    return join


@pytest.fixture
def start_worker(migrated_url: str, mosquitto: MosquittoBroker
                 ) -> Iterator[Callable[..., IngestWorker]]:
    """Start an ingest worker with the given setting overrides (defaults otherwise)."""
    started: list[IngestWorker] = []

    def start(**overrides: object) -> IngestWorker:
        worker = IngestWorker(ingest_settings(migrated_url, mosquitto, **overrides))
        worker.start()
        started.append(worker)
        assert worker.wait_subscribed(WAIT_S), "subscriptions were not granted"
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def test_a_flooding_machine_is_rationed_and_its_neighbour_loses_nothing(
    start_worker: Callable[..., IngestWorker], session: Session, mosquitto: MosquittoBroker
) -> None:
    register(session, FLOODER)
    register(session, NEIGHBOUR, count=10)
    worker = start_worker()  # the default quota: 100 dead letters or 1 MiB per machine an hour
    neighbour_junk = [b"{not json", b'{"kind":"vend"}', b"\xff\xfe"]
    join_flood = publish_in_thread(
        mosquitto, FLOODER, [(events_topic(FLOODER), junk()) for _ in range(JUNK_MESSAGES)])
    join_neighbour = publish_in_thread(mosquitto, NEIGHBOUR, [
        *[(events_topic(NEIGHBOUR), vend(NEIGHBOUR, seq).to_bytes())
          for seq in range(1, VALID_EVENTS + 1)],
        *[(events_topic(NEIGHBOUR), payload) for payload in neighbour_junk],
    ])
    join_flood()
    join_neighbour()
    dropped = select(func.coalesce(func.sum(DeadLetterDrops.dropped), 0))
    wait_until(
        lambda: scalar(session, letters_of(FLOODER)) + scalar(session, dropped) == JUNK_MESSAGES,
        timeout=FLOOD_WAIT_S, what="every junk message stored or counted")
    events = select(func.count()).select_from(DispenseEvent).where(
        DispenseEvent.machine_id == NEIGHBOUR)
    wait_until(lambda: scalar(session, events) == VALID_EVENTS, timeout=FLOOD_WAIT_S,
               what="the neighbour's valid events")
    wait_until(lambda: scalar(session, letters_of(NEIGHBOUR)) == len(neighbour_junk),
               what="the neighbour's own dead letters")

    kept = scalar(session, letters_of(FLOODER))
    kept_bytes = scalar(session, select(func.sum(func.length(DeadLetter.payload))).where(
        DeadLetter.machine_id == FLOODER))
    assert kept == DEFAULT_QUOTA_BYTES // JUNK_BYTES  # the byte bound bites first: 17 letters
    assert kept_bytes <= DEFAULT_QUOTA_BYTES
    (drops,) = fresh(session).execute(select(DeadLetterDrops)).scalars().all()
    assert drops.machine_id == FLOODER
    assert drops.dropped == JUNK_MESSAGES - kept
    assert drops.dropped_bytes == (JUNK_MESSAGES - kept) * JUNK_BYTES
    assert worker.metrics.dead_letters_dropped._value.get() == JUNK_MESSAGES - kept
    alerts = session.execute(select(Alert)).scalars().all()
    floods = [a for a in alerts if a.type == AlertType.DEAD_LETTER_FLOOD]
    assert [(a.subject, a.status) for a in floods] == [(FLOODER, AlertStatus.OPEN)]
    assert floods[0].details["quota_bytes"] == DEFAULT_QUOTA_BYTES


def test_valid_messages_of_an_unknown_machine_are_never_rationed(
    start_worker: Callable[..., IngestWorker], session: Session, mosquitto: MosquittoBroker
) -> None:
    start_worker(dead_letter_quota_count=5)
    sent = 40  # a machine whose row is not registered yet: valid events, kept to replay
    publisher = machine_publisher(mosquitto, STRANGER)
    try:
        publisher.publish_all([
            *[(events_topic(STRANGER), vend(STRANGER, seq).to_bytes())
              for seq in range(1, sent + 1)],
            *[(events_topic(STRANGER), b"{junk %d" % n) for n in range(10)],
        ])
    finally:
        publisher.close()
    wait_until(lambda: scalar(session, letters_of(STRANGER)) == sent + 5,
               what="every valid event and five junk messages kept")
    dropped = select(DeadLetterDrops.dropped).where(DeadLetterDrops.machine_id == STRANGER)
    wait_until(lambda: scalar(session, dropped) == 10 - 5, what="the other junk counted")


def test_maintenance_prunes_old_dead_letters_and_resolves_ended_floods(
    start_worker: Callable[..., IngestWorker], session: Session
) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    for n, when in enumerate([old, old, recent]):
        topic, payload = events_topic(FLOODER), b"{old %d" % n
        session.add(DeadLetter(received_at=when, topic=topic, reason="test", payload=payload,
                               digest=dead_letter_digest(topic, payload), machine_id=FLOODER))
    for machine, last_drop in [(FLOODER, now - timedelta(hours=2)), (NEIGHBOUR, now)]:
        session.add(DeadLetterDrops(machine_id=machine, dropped=7, dropped_bytes=70,
                                    first_dropped_at=last_drop, last_dropped_at=last_drop))
        session.add(Alert(type=AlertType.DEAD_LETTER_FLOOD, severity="warning", subject=machine,
                          machine_id=machine, message="flood", opened_at=last_drop))
    session.commit()
    start_worker()  # retention 30 days, window an hour: the defaults
    wait_until(lambda: scalar(session, select(func.count()).select_from(DeadLetter)) == 1,
               what="the two letters past retention pruned")
    status = select(Alert.status).where(Alert.subject == FLOODER)
    wait_until(lambda: fresh(session).execute(status).scalar_one() == AlertStatus.RESOLVED,
               what="the flood that ended an hour ago resolved")
    (left,) = fresh(session).execute(select(DeadLetter)).scalars().all()
    assert left.received_at == recent
    still = select(Alert.status).where(Alert.subject == NEIGHBOUR)
    assert fresh(session).execute(still).scalar_one() == AlertStatus.OPEN
    drops = select(DeadLetterDrops.dropped).where(DeadLetterDrops.machine_id == FLOODER)
    assert scalar(session, drops) == 7  # the count outlives the alert
