"""Nothing lost, nothing doubled: kill -9 of an ingest worker, and two workers sharing the load."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from backend.ingest import IngestWorker
from backend.models import DispenseEvent, Slot
from simulators.broker import MosquittoBroker
from tests.backend.conftest import ingest_settings, register
from tests.backend.helpers import WAIT_S, fresh, wait_until
from tests.backend.procs import Fleet, IngestProcess
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER

MACHINES = {f"rel-{n:03d}": f"rel-pw-{n:03d}" for n in range(1, 51)}
EVENTS_PER_MACHINE = 40
START_COUNT = 100
TOTAL = len(MACHINES) * EVENTS_PER_MACHINE


@pytest.fixture
def broker_users() -> dict[str, str]:
    """The backend and 50 simulated machines."""
    return {BACKEND_USER: BACKEND_PASSWORD, **MACHINES}


def _stored(session: Session) -> int:
    fresh(session)
    return int(session.execute(select(func.count()).select_from(DispenseEvent)).scalar_one())


def _assert_exactly_once(session: Session) -> None:
    fresh(session)
    assert _stored(session) == TOTAL
    keys = session.execute(
        select(func.count()).select_from(
            select(DispenseEvent.machine_id, DispenseEvent.boot_id, DispenseEvent.seq)
            .distinct().subquery())
    ).scalar_one()
    assert keys == TOTAL
    # Stock was applied exactly once per event too.
    counts = set(session.execute(select(Slot.count)).scalars())
    assert counts == {START_COUNT - EVENTS_PER_MACHINE}


@pytest.fixture
def fleet_db(migrated_url: str, session: Session) -> str:
    for machine_id in MACHINES:
        register(session, machine_id, count=START_COUNT, capacity=START_COUNT, threshold=2)
    return migrated_url


def test_kill_9_mid_stream_loses_and_doubles_nothing(
    fleet_db: str, mosquitto: MosquittoBroker, session: Session
) -> None:
    first = IngestProcess(fleet_db, mosquitto)
    try:
        first.wait_subscribed()
        fleet = Fleet(mosquitto, MACHINES, EVENTS_PER_MACHINE)
        fleet.start()
        wait_until(lambda: _stored(session) >= TOTAL // 5, what="a fifth of the stream")
        first.kill()  # mid-batch, mid-stream: whatever was not committed is not acked
    finally:
        if first.process.poll() is None:
            first.kill()
    stored_at_kill = _stored(session)
    assert stored_at_kill < TOTAL, "the stream finished before the kill; make it longer"
    fleet.join()  # the broker queues the rest for the worker's persistent session
    second = IngestProcess(fleet_db, mosquitto)
    try:
        second.wait_subscribed()
        wait_until(lambda: _stored(session) >= TOTAL, timeout=WAIT_S * 4,
                   what=f"{TOTAL} events after restart")
    finally:
        second.terminate()
    _assert_exactly_once(session)


def test_two_workers_on_the_shared_subscription_store_each_event_once(
    fleet_db: str, mosquitto: MosquittoBroker, session: Session
) -> None:
    workers = [IngestWorker(ingest_settings(fleet_db, mosquitto), index) for index in (0, 1)]
    try:
        for worker in workers:
            worker.start()
            assert worker.wait_subscribed(WAIT_S)
        fleet = Fleet(mosquitto, MACHINES, EVENTS_PER_MACHINE)
        fleet.start()
        fleet.join()
        wait_until(lambda: _stored(session) >= TOTAL, timeout=WAIT_S * 4,
                   what=f"{TOTAL} events from two workers")
    finally:
        for worker in workers:
            worker.stop()
    _assert_exactly_once(session)
    shares = [int(w.metrics.messages_in._value.get()) for w in workers]
    assert all(share > 0 for share in shares), f"one worker got nothing: {shares}"
    assert sum(shares) >= TOTAL
