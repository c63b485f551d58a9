"""The ingest worker's own bound on its inbox, against a real Mosquitto (issue 5).

Mosquitto 2.0 does not keep to a worker's Receive Maximum when acks come in
batches, so the worker bounds its inbox itself: when it is full, paho's
network thread waits (and stops reading the socket) until the writer makes
room. These tests hold the writer as a database that stopped answering would,
let a fleet publish many times the bound, and check the bound, the metrics,
the logs, a stop during back-pressure, and that nothing is lost or doubled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col

from backend.config import Settings
from backend.ingest import IngestWorker
from backend.ingest.parse import Message
from backend.ingest.store import BatchResult
from backend.models import DeadLetter, DispenseEvent
from simulators.broker import MosquittoBroker
from tests.backend.conftest import ingest_settings, register
from tests.backend.helpers import (
    WAIT_S,
    fresh,
    publish_vends,
)
from tests.conftest import TEST_MACHINES
from tests.waiting import wait_until

INBOX_MAX = 200
BATCH_MAX = 50
# No Receive Maximum to speak of: the inbox bound alone must hold the broker back.
RECEIVE_MAXIMUM = 65535
MACHINES = sorted(TEST_MACHINES)
STOP_DEADLINE_S = 5.0
"""stop() must return within this even while paho's thread waits on a full inbox."""


class DatabaseGate:
    """Makes a worker's writer fail as if the database were unreachable, until opened.

    The writer keeps the batch in hand and retries it (OperationalError), so it
    takes nothing more from the inbox, and it still notices a stop between tries.
    """

    def __init__(self, worker: IngestWorker) -> None:
        self.opened = threading.Event()
        self.refused = 0
        real_write = worker.writer.write

        def write(session: Session, messages: Sequence[Message], now: datetime) -> BatchResult:
            if not self.opened.is_set():
                self.refused += 1
                raise OperationalError("COMMIT", None, Exception("database held by the test"))
            return real_write(session, messages, now)

        worker.writer.write = write  # type: ignore[method-assign]


def _settings(url: str, broker: MosquittoBroker) -> Settings:
    return ingest_settings(url, broker, ingest_inbox_max=INBOX_MAX,
                           ingest_batch_max_size=BATCH_MAX,
                           ingest_receive_maximum=RECEIVE_MAXIMUM)


def _worker(url: str, broker: MosquittoBroker) -> IngestWorker:
    return IngestWorker(_settings(url, broker))


def _metric(worker: IngestWorker, name: str) -> float:
    value = worker.registry.get_sample_value(name)
    assert value is not None, f"{name} is not exposed"
    return value


def _publish_fleet(broker: MosquittoBroker, per_machine: int) -> int:
    """Every test machine publishes ``per_machine`` vends (seq 1..n); return the total."""
    return sum(publish_vends(broker, machine_id, range(1, per_machine + 1))
               for machine_id in MACHINES)


def _stored(session: Session) -> tuple[int, int]:
    """Return (rows, distinct event keys) of dispense events."""
    fresh(session)
    rows = session.execute(select(func.count()).select_from(DispenseEvent)).scalar_one()
    keys = session.execute(select(func.count()).select_from(
        select(col(DispenseEvent.machine_id), col(DispenseEvent.boot_id), col(DispenseEvent.seq))
        .distinct().subquery())).scalar_one()
    return int(rows), int(keys)


def _wait_until_full(worker: IngestWorker) -> None:
    """Wait until the inbox is at its bound and paho's thread is waiting for room."""
    wait_until(lambda: _metric(worker, "nx_ingest_inbox_depth") >= INBOX_MAX,
               what=f"{INBOX_MAX} messages in the inbox")
    assert worker.inbox.high_water == INBOX_MAX
    wait_until(lambda: worker.inbox.pressed, what="paho's thread waiting for room")
    assert _metric(worker, "nx_ingest_inbox_depth") == INBOX_MAX


@pytest.fixture
def fleet(session: Session) -> list[str]:
    """Register every test machine (stock enough that no vend empties a slot)."""
    for machine_id in MACHINES:
        register(session, machine_id, count=1000, capacity=1000)
    return MACHINES


@pytest.fixture
def workers() -> Iterator[list[IngestWorker]]:
    """Workers a test starts; each is stopped at the end whatever happened."""
    started: list[IngestWorker] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def test_inbox_never_exceeds_its_bound_and_everything_is_stored_once(
    migrated_url: str, mosquitto: MosquittoBroker, session: Session, fleet: list[str],
    workers: list[IngestWorker], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="backend.ingest.mqtt")
    worker = _worker(migrated_url, mosquitto)
    gate = DatabaseGate(worker)
    workers.append(worker)
    worker.start()
    assert worker.wait_subscribed(WAIT_S), "subscriptions were not granted"

    started = time.monotonic()
    total = _publish_fleet(mosquitto, per_machine=300)  # 3,000: fifteen times the bound
    _wait_until_full(worker)
    held_s = time.monotonic() - started
    assert gate.refused > 0, "the writer was never held"
    assert _stored(session) == (0, 0)

    gate.opened.set()
    wait_until(lambda: _stored(session) == (total, total), timeout=4 * WAIT_S,
               what=f"{total} events stored")
    # The inbox drained, which ends the last back-pressure episode.
    wait_until(lambda: not worker.inbox.pressed, what="back-pressure over")
    drained_s = time.monotonic() - started

    # Recorded by every put under the queue's lock, so no excursion is missed.
    assert worker.inbox.high_water == INBOX_MAX
    assert _stored(session) == (total, total)
    assert fresh(session).execute(select(func.count()).select_from(DeadLetter)).scalar_one() == 0
    assert _metric(worker, "nx_ingest_inbox_depth") == 0
    assert _metric(worker, "nx_ingest_inbox_blocked_seconds_total") > 0
    episodes = _metric(worker, "nx_ingest_backpressure_episodes_total")
    assert episodes >= 1
    wait_until(lambda: _metric(worker, "nx_ingest_messages_committed_total") == total,
               what="committed counter")

    # One WARNING when an episode starts and one INFO when it ends, not one a message.
    ours = [r for r in caplog.records if r.name == "backend.ingest.mqtt"]
    starts = [r for r in ours if r.levelno == logging.WARNING and "inbox full" in r.message]
    ends = [r for r in ours if r.levelno == logging.INFO and "back-pressure over" in r.message]
    assert len(starts) == len(ends) == episodes
    print(f"\nbound {INBOX_MAX}: high water {worker.inbox.high_water}, {total} events, "
          f"full after {held_s:.1f}s, drained after {drained_s:.1f}s, "
          f"{episodes:.0f} episode(s), "
          f"{_metric(worker, 'nx_ingest_inbox_blocked_seconds_total'):.1f}s blocked")


def test_stop_while_blocked_on_a_full_inbox_returns_and_a_restart_loses_nothing(
    migrated_url: str, mosquitto: MosquittoBroker, session: Session, fleet: list[str],
    workers: list[IngestWorker],
) -> None:
    first = _worker(migrated_url, mosquitto)
    DatabaseGate(first)  # never opened: the database stays down for this worker
    workers.append(first)
    first.start()
    assert first.wait_subscribed(WAIT_S), "subscriptions were not granted"
    total = _publish_fleet(mosquitto, per_machine=100)  # 1,000: five times the bound
    _wait_until_full(first)

    # In a thread, so that a stop() that hangs fails the test instead of hanging
    # it (and out of the fixture's list, so teardown does not call it again).
    workers.remove(first)
    stopper = threading.Thread(target=first.stop, name="stop-first-worker", daemon=True)
    began = time.monotonic()
    stopper.start()
    stopper.join(STOP_DEADLINE_S)
    assert not stopper.is_alive(), f"stop() still blocked after {STOP_DEADLINE_S}s"
    stop_s = time.monotonic() - began
    assert _stored(session) == (0, 0)

    # Same worker index, so the same client id and the same persistent session.
    second = _worker(migrated_url, mosquitto)
    workers.append(second)
    second.start()
    wait_until(lambda: _stored(session) == (total, total), timeout=4 * WAIT_S,
               what=f"{total} events stored after the restart")
    assert second.inbox.high_water <= INBOX_MAX
    assert fresh(session).execute(select(func.count()).select_from(DeadLetter)).scalar_one() == 0
    print(f"\nstop() took {stop_s:.2f}s while blocked; after restart {total} stored once")


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # ~10 s of waiting; once is enough
def test_a_wait_past_the_keepalive_costs_the_connection_but_loses_nothing(
    migrated_url: str, mosquitto: MosquittoBroker, session: Session, fleet: list[str],
    workers: list[IngestWorker],
) -> None:
    keepalive_s = 5  # the least the settings allow; the broker gives up after 1.5 x
    worker = IngestWorker(ingest_settings(
        migrated_url, mosquitto, ingest_inbox_max=INBOX_MAX, ingest_batch_max_size=BATCH_MAX,
        ingest_receive_maximum=RECEIVE_MAXIMUM, mqtt_keepalive_s=keepalive_s))
    gate = DatabaseGate(worker)
    workers.append(worker)
    worker.start()
    assert worker.wait_subscribed(WAIT_S), "subscriptions were not granted"
    total = _publish_fleet(mosquitto, per_machine=100)
    _wait_until_full(worker)

    # paho's thread sends nothing while it waits (no PINGREQ), so the broker drops us.
    dropped = f"Client {worker.client.client_id} has exceeded timeout"
    wait_until(lambda: dropped in mosquitto.log_tail(200), timeout=4 * keepalive_s + WAIT_S,
               what="the broker to drop the waiting worker")
    gate.opened.set()
    wait_until(lambda: _stored(session) == (total, total), timeout=4 * WAIT_S,
               what=f"{total} events stored after the reconnect")
    # The batch in hand and the inbox came over the dropped connection: their
    # acks were not sent, the broker sent them again, and the unique key dropped them.
    wait_until(lambda: _metric(worker, "nx_ingest_duplicates_total") > 0,
               what="redelivered events counted as duplicates")
    assert worker.wait_subscribed(WAIT_S), "not subscribed again after the drop"
    assert worker.inbox.high_water == INBOX_MAX
