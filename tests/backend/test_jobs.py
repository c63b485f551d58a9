"""backend/jobs: advisory locks, periods claimed once, failover between coordinators."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session

from backend.db import make_engine, migrate
from backend.jobs import AdvisoryLocks, Coordinator, Job, LocalLocks, Role
from backend.jobs.coordinator import period_start
from backend.models import JobRun
from tests.backend.helpers import wait_until
from tests.postgres import create_pg_database, drop_pg_database


@pytest.fixture
def pg_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (skips when PostgreSQL does not answer)."""
    url = create_pg_database(postgres_admin_url)
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(url, postgres_admin_url)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on that database."""
    engine = make_engine(pg_url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_period_start_counts_from_the_epoch() -> None:
    at = datetime(2026, 12, 3, 15, 0, 7, 500_000, tzinfo=UTC)
    assert period_start(at, 5.0) == datetime(2026, 12, 3, 15, 0, 5, tzinfo=UTC)
    assert period_start(at, 3600.0) == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)


@pytest.mark.postgres
def test_one_process_holds_a_job_until_its_connection_goes(
    pg_url: str, pg_engine: Engine
) -> None:
    first, second = AdvisoryLocks(pg_url), AdvisoryLocks(pg_url)
    try:
        assert first.hold("job-a")
        assert not second.hold("job-a")
        assert first.hold("job-a")  # still ours
        # The holder's connection dies (a crash, a network cut): it knows at its
        # next check, and the lock is free for the standby.
        with pg_engine.connect() as admin:
            # With a timeout it waits for the backend to end (and its locks to go);
            # without, it only signals it, and the standby could ask too early.
            admin.execute(text(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"))
            admin.commit()
        assert not first.hold("job-a")
        assert second.hold("job-a")
        assert not first.hold("job-a")
        assert first.hold("job-b")  # another job is another lock
        second.close()  # a clean stop frees the lock as well
        assert first.hold("job-a")
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_two_coordinators_run_each_period_once_and_hand_over(
    pg_url: str, pg_engine: Engine
) -> None:
    runs: Counter[str] = Counter()
    lock = threading.Lock()

    def count(holder: str) -> Job:
        def run(_now: datetime) -> None:
            with lock:
                runs[holder] += 1
        return Job("tick", 0.2, run=run)

    first = Coordinator(pg_engine, AdvisoryLocks(pg_url), jobs=[count("first")], poll_s=0.1,
                        holder="test:1")
    second = Coordinator(pg_engine, AdvisoryLocks(pg_url), jobs=[count("second")],
                         poll_s=0.1, holder="test:2")
    first.start()
    second.start()
    try:
        wait_until(lambda: sum(runs.values()) >= 5, what="five periods")
        holder = "first" if runs["first"] else "second"
        assert runs[holder] == sum(runs.values()), runs  # one holder at a time
        (first if holder == "first" else second).stop()
        other = "second" if holder == "first" else "first"
        wait_until(lambda: runs[other] >= 3, what="the standby taking over")
    finally:
        first.stop()
        second.stop()
    with Session(pg_engine) as session:
        logged = session.execute(select(func.count()).select_from(JobRun)).scalar_one()
        periods = session.execute(
            select(func.count(func.distinct(JobRun.period_start)))).scalar_one()
        outcomes = set(session.execute(select(JobRun.outcome)).scalars())
    assert logged == periods == sum(runs.values())
    assert outcomes == {"ok"}


@pytest.mark.postgres
def test_a_role_moves_to_the_standby_when_its_holder_stops(pg_url: str, pg_engine: Engine) -> None:
    events: list[str] = []

    def role(name: str) -> Role:
        return Role("reader", lambda: events.append(f"{name} take"),
                    lambda: events.append(f"{name} drop"))

    first = Coordinator(pg_engine, AdvisoryLocks(pg_url), jobs=[], roles=[role("first")],
                        poll_s=0.1)
    first.start()
    wait_until(lambda: events == ["first take"], what="the first holder")
    second = Coordinator(pg_engine, AdvisoryLocks(pg_url), jobs=[], roles=[role("second")],
                         poll_s=0.1)
    second.start()
    try:
        first.stop()
        wait_until(lambda: "second take" in events, what="the standby taking the role")
        assert events == ["first take", "first drop", "second take"]
    finally:
        first.stop()
        second.stop()


def test_on_sqlite_jobs_run_unlogged_as_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    engine = make_engine(url, immediate=True)
    ran = threading.Event()
    job = Job("tick", 60, run=lambda _n: ran.set())
    coordinator = Coordinator(engine, LocalLocks(), jobs=[job], poll_s=0.1)
    coordinator.start()
    try:
        wait_until(ran.is_set, what="the job")
    finally:
        coordinator.stop()
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(JobRun)).scalar_one() == 0
    engine.dispose()
