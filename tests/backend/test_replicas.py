"""Two API replicas and three ingest workers on one PostgreSQL, two of them killed twice.

Every periodic job must run once per period (from the run log, ``job_run``)
and be taken over within the failover bound when its holder is killed; the
retained stock topic must keep reaching the database when the worker reading
it dies; and every event is stored once, every alert opened once.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session, col

from backend.db import make_engine, migrate
from backend.jobs.catalog import HOTSPOT_SCAN, INGEST_MAINTENANCE, NOTIFY_ESCALATION
from backend.models import Alert, DispenseEvent, JobRun, Machine, StockSnapshot
from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel, machine_topic
from simulators.broker import MosquittoBroker
from tests.backend.conftest import register
from tests.backend.helpers import (
    WAIT_S,
    PacedPublisher,
    events_topic,
    fresh,
    vend,
    wait_until,
)
from tests.backend.procs import BackendProcess, Fleet
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER
from tests.postgres import create_pg_database, drop_pg_database

MACHINES = {f"rep-{n:03d}": f"rep-pw-{n:03d}" for n in range(1, 51)}
PROBE, PROBE_PASSWORD = "rep-probe", "rep-probe-pw"
EVENTS_PER_MACHINE = 50
VEND_INTERVAL_S = 0.5
"""Each machine vends this often, so the stream lasts ~25 s: long enough for two kill rounds."""
TOTAL = len(MACHINES) * EVENTS_PER_MACHINE
POLL_S = 0.5
PERIODS = {INGEST_MAINTENANCE: 1.0, NOTIFY_ESCALATION: 1.0, HOTSPOT_SCAN: 2.0}
FAILOVER_BOUND_S = 5.0
"""A killed holder's job is run again, and the retained topic read again, within this:
its lock goes with its connection at once, a standby tries every POLL_S, and the rest
is slack for five backends, fifty publishers and PostgreSQL sharing two cores."""
ENV = {
    "NX_INGEST_MAINTENANCE_INTERVAL_S": "1", "NX_NOTIFY_JOBS_INTERVAL_S": "1",
    "NX_HOTSPOT_INTERVAL_S": "2", "NX_HOTSPOT_REPLICATES": "9", "NX_HOTSPOT_WORKERS": "1",
    "NX_HOTSPOT_STUDY_DAYS": "7", "NX_JOBS_POLL_S": str(POLL_S), "NX_OFFLINE_TIMEOUT_S": "4",
    "NX_INGEST_WRITER_PROCESS": "false", "NX_INGEST_BATCH_MAX_WAIT_S": "0.05",
}
ROLE_TAKEN = "role retained-reader taken"


@pytest.fixture
def broker_users() -> dict[str, str]:
    """The backend, 50 simulated machines and the stock probe."""
    return {BACKEND_USER: BACKEND_PASSWORD, **MACHINES, PROBE: PROBE_PASSWORD}


@pytest.fixture
def pg_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (skips when PostgreSQL does not answer)."""
    url = create_pg_database(postgres_admin_url)
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(url, postgres_admin_url)


class StockProbe:
    """Publish a retained stock snapshot with a new revision every few tenths of a second."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.publisher = PacedPublisher(broker.host, broker.port, PROBE, PROBE_PASSWORD)
        self.sent: list[tuple[int, datetime]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        revision = 0
        while not self._stop.wait(0.3):
            revision += 1
            now = datetime.now(UTC)
            snap = payloads.StockSnapshot(
                machine_id=PROBE, boot_id=1, revision=revision, device_time=now,
                slots=(payloads.SlotStock(slot=1, count=5 + revision % 3, capacity=10),))
            self.publisher.publish(machine_topic(PROBE, Channel.STOCK), snap.to_bytes(),
                                   retain=True)
            self.sent.append((revision, now))

    def start(self) -> None:
        """Start publishing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing and wait for the broker's acknowledgements (once)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(WAIT_S)
        self.publisher.wait_acked(len(self.sent))
        self.publisher.close()


class PacedFleet(Fleet):
    """The fleet, each machine publishing one vend every VEND_INTERVAL_S."""

    def _run(self, machine_id: str) -> None:
        try:
            publisher = PacedPublisher(self.broker.host, self.broker.port, machine_id,
                                       self.machines[machine_id])
            pace = threading.Event()
            for seq in range(1, self.events + 1):
                publisher.publish(events_topic(machine_id), vend(machine_id, seq).to_bytes())
                pace.wait(VEND_INTERVAL_S)  # a machine's vending rate, not a wait for a result
            publisher.wait_acked(self.events)
            publisher.close()
        except BaseException as exc:  # surfaced by join()
            self.errors.append(exc)


def _stored(session: Session) -> int:
    fresh(session)
    return int(session.execute(select(func.count()).select_from(DispenseEvent)).scalar_one())


def _latest_holder(session: Session, job: str) -> int:
    fresh(session)
    holder = session.execute(select(JobRun.holder).where(JobRun.job == job)
                             .order_by(JobRun.period_start.desc()).limit(1)).scalar_one()  # type: ignore[attr-defined]
    return int(holder.rsplit(":", 1)[1])


def _retained_holder(workers: list[BackendProcess]) -> BackendProcess:
    """Return the live worker that took the retained-reader role last (by its log's clock)."""
    taken = [(line[:23], w) for w in workers if w.process.poll() is None
             for line in w.lines if ROLE_TAKEN in line]
    assert taken, "no worker reads the retained topics"
    return max(taken, key=lambda item: item[0])[1]


@pytest.mark.postgres
@pytest.mark.slow
def test_replicas_and_workers_survive_kill_9_with_jobs_run_once(
    pg_url: str, mosquitto: MosquittoBroker
) -> None:
    engine = make_engine(pg_url)
    with Session(engine) as setup:
        for machine_id in MACHINES:
            register(setup, machine_id, count=100, capacity=100, threshold=2)
        register(setup, PROBE, count=5, capacity=10, threshold=1)
        # Online and just seen: once they fall silent the watchdog takes them offline.
        setup.execute(update(Machine).where(col(Machine.id).in_(MACHINES))
                      .values(status="online", last_seen=datetime.now(UTC)))
        setup.commit()
    session = Session(engine)

    def replica() -> BackendProcess:
        return BackendProcess(pg_url, mosquitto, ["serve", "--no-ingest", "--port", "0"], ENV)

    def worker(index: int) -> BackendProcess:
        return BackendProcess(pg_url, mosquitto, ["ingest", "--worker", str(index)], ENV)

    replicas = [replica(), replica()]
    workers = [worker(0), worker(1), worker(2)]
    # The replacement of the replica killed in round 1, started ahead as an
    # orchestrator would: serve takes 10-20 s to start on two busy cores.
    spare = replica()
    everyone = [*replicas, *workers, spare]
    killed: list[tuple[BackendProcess, float]] = []
    probe = StockProbe(mosquitto)
    try:
        for proc in workers:
            proc.wait_subscribed()
        for proc in [*replicas, spare]:
            proc.wait_line("Application startup complete")
        wait_until(lambda: any(w.logged(ROLE_TAKEN) for w in workers), what="a retained reader")
        probe.start()
        fleet = PacedFleet(mosquitto, MACHINES, EVENTS_PER_MACHINE)
        fleet.start()
        began = time.monotonic()
        stored_at_kill: list[int] = []
        successor: BackendProcess | None = None
        for round_ in (1, 2):
            spare.wait_line("Application startup complete")
            if successor is not None:
                successor.wait_subscribed()
            wait_until(lambda r=round_: _stored(session) >= TOTAL * r // 10,  # type: ignore[misc]
                       timeout=WAIT_S * 2, what=f"{round_}/10 of the stream")
            holder_pid = _latest_holder(session, NOTIFY_ESCALATION)
            # The spare is a running replica too, and may be the one holding the jobs.
            doomed = next(r for r in [*replicas, spare] if r.pid == holder_pid)
            reader = _retained_holder(workers)
            stored_at_kill.append(_stored(session))
            for proc in (doomed, reader):
                proc.kill()
                killed.append((proc, time.time()))
            print(f"round {round_}: killed at {time.monotonic() - began:.1f} s, "
                  f"{stored_at_kill[-1]} stored")
            if doomed is not spare:
                replicas[replicas.index(doomed)] = spare
            spare = replica()  # ahead for the next round
            everyone.append(spare)
            # The worker comes back under its index: its session holds what the
            # broker queued for it meanwhile.
            index = workers.index(reader)
            workers[index] = successor = worker(index)
            everyone.append(successor)
        assert stored_at_kill[-1] < TOTAL, "the stream ended before the second kill; lengthen it"
        fleet.join()
        wait_until(lambda: _stored(session) >= TOTAL, timeout=WAIT_S * 4, what="every event")
        probe.stop()
        # Every machine falls silent now: the watchdog opens one offline alert each.
        offline = select(func.count()).select_from(Alert).where(Alert.type == "machine_offline")
        wait_until(lambda: fresh(session).execute(offline).scalar_one() >= len(MACHINES),
                   timeout=WAIT_S * 2, what="an offline alert per machine")
        end = datetime.now(UTC)
    finally:
        probe.stop()
        for proc in everyone:
            if proc.process.poll() is None:
                proc.process.terminate()
        for proc in everyone:
            proc.process.wait(WAIT_S)
            if proc.process.stderr is not None:
                proc.process.stderr.close()
    fresh(session)
    _assert_events_once(session)
    _assert_alerts_once(session)
    _assert_jobs_once_per_period(session, killed, end)
    _assert_state_kept_flowing(session, probe.sent)
    session.close()
    engine.dispose()


def _assert_events_once(session: Session) -> None:
    assert _stored(session) == TOTAL
    keys = session.execute(select(func.count()).select_from(
        select(DispenseEvent.machine_id, DispenseEvent.boot_id, DispenseEvent.seq)
        .distinct().subquery())).scalar_one()
    assert keys == TOTAL


def _assert_alerts_once(session: Session) -> None:
    twice = session.execute(
        select(Alert.type, Alert.machine_id, func.count()).group_by(Alert.type, Alert.machine_id)
        .having(func.count() > 1)).all()
    assert twice == []


def _assert_jobs_once_per_period(
    session: Session, killed: list[tuple[BackendProcess, float]], end: datetime
) -> None:
    killed_pids = {proc.pid for proc, _ in killed}
    taken_over: list[str] = []
    for job, period in PERIODS.items():
        rows = session.execute(select(JobRun.period_start, JobRun.holder, JobRun.outcome)
                               .where(JobRun.job == job).order_by(JobRun.period_start)).all()  # type: ignore[arg-type]
        starts = [row[0] for row in rows]
        assert len(starts) == len(set(starts)), f"{job} ran twice in a period"
        assert starts, f"{job} never ran"
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
        gaps.append((end - starts[-1]).total_seconds())
        print(f"{job}: {len(starts)} periods, longest between runs {max(gaps):.1f} s")
        assert max(gaps) <= period + FAILOVER_BOUND_S, (job, max(gaps))
        holders = {int(row[1].rsplit(":", 1)[1]) for row in rows}
        # Each job has its own lock, so the processes killed need not hold every job:
        # a job whose holder was killed must have been taken over.
        if holders & killed_pids:
            taken_over.append(job)
            assert len(holders) >= 2, f"{job} was never taken over: {holders}"
        # A run of a killed holder may have been cut short, and so may one begun as
        # the processes were being stopped; every other one finished well.
        unfinished = [row for row in rows if row[2] != "ok" and row[0] < end
                      and int(row[1].rsplit(":", 1)[1]) not in killed_pids]
        assert unfinished == [], (job, unfinished[:3])
    assert NOTIFY_ESCALATION in taken_over, taken_over  # its holder is killed each round
    for proc, at in killed:
        after = session.execute(select(func.count()).select_from(JobRun).where(
            JobRun.holder.endswith(f":{proc.pid}"),  # type: ignore[attr-defined]
            JobRun.started_at > datetime.fromtimestamp(at, UTC) + timedelta(seconds=1))
        ).scalar_one()
        assert after == 0, "a killed process still ran jobs"


def _assert_state_kept_flowing(session: Session, sent: list[tuple[int, datetime]]) -> None:
    stored = session.execute(select(StockSnapshot.revision, StockSnapshot.received_at)
                             .where(StockSnapshot.machine_id == PROBE)).all()
    assert stored, "no stock snapshot reached the database"
    worst = 0.0
    for revision, published in sent:
        # Intermediate revisions may be skipped (retained keeps only the newest),
        # but this state or a newer one must arrive within the bound.
        arrivals = [at for rev, at in stored if rev >= revision]
        assert arrivals, f"revision {revision} and newer never arrived"
        worst = max(worst, (min(arrivals) - published).total_seconds())
    print(f"retained stock: {len(sent)} published, {len(stored)} stored, worst lag {worst:.1f} s")
    assert worst <= FAILOVER_BOUND_S, worst
