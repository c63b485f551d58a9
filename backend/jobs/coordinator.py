"""Run periodic jobs once per period, and held roles in one process, across all processes.

Each job and role has a thread. It asks ``Locks`` whether this process holds
the job (taking it when free, every ``poll_s``); the holder runs the job once
at the start of each period. On PostgreSQL it first claims the period in the
run log (``job_run``, unique on job and period start), so a period is run at
most once even when the holder changes hands mid-period. On SQLite (one
machine) jobs run as they always did, unlogged. A role (such as reading the
retained topics) is taken when
its lock is won and dropped when it is lost.

Failover bound: a holder that dies frees its lock when its connection drops
(at once for a killed process, within the keepalive for a lost host); a
standby takes it within ``poll_s`` and runs the period then current, so no
job is left unrun longer than one period + ``poll_s`` (+ keepalive).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from backend.db import session_scope
from backend.dbutil import insert_ignore
from backend.jobs.locks import Locks
from backend.models import JobRun, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A periodic job, run once per ``period_s`` across all processes: ``work`` or ``run``."""

    name: str
    period_s: float
    run: Callable[[datetime], object] | None = None
    """Runs in transactions of its own; the period is claimed before and its outcome noted after."""
    work: Callable[[Session, datetime], object] | None = None
    """Runs inside the claim's transaction: claim, work and outcome commit together or not at
    all (a holder that dies in it leaves the period to the next), one write on SQLite."""


@dataclass(frozen=True)
class Role:
    """Something one process does at a time: ``take()`` on winning it, ``drop()`` on losing it."""

    name: str
    take: Callable[[], None]
    drop: Callable[[], None]


def holder_name() -> str:
    """Return ``host:pid``, how the run log names this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def period_start(now: datetime, period_s: float) -> datetime:
    """Return the start of the period ``now`` falls in (periods count from the epoch)."""
    slot = math.floor(now.timestamp() / period_s) * period_s
    return datetime.fromtimestamp(slot, UTC)


def claim_period(session: Session, job: str, start: datetime, holder: str) -> int | None:
    """Record that ``holder`` runs ``job`` for the period at ``start``; None if already claimed."""
    rows = insert_ignore(
        session, JobRun,
        [{"job": job, "period_start": start, "holder": holder, "started_at": utcnow()}],
        returning=("id",),
    )
    return int(rows[0][0]) if rows else None


def finish_run(session: Session, run_id: int, error: str | None) -> None:
    """Record how the run ended."""
    session.execute(
        update(JobRun).where(col(JobRun.id) == run_id).values(
            finished_at=utcnow(), outcome="failed" if error else "ok",
            error=error[:500] if error else None)
    )


def prune_runs(session: Session, *, before: datetime) -> int:
    """Delete run-log rows started before ``before``; return how many."""
    result = session.execute(delete(JobRun).where(col(JobRun.started_at) < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


class Coordinator:
    """Run ``jobs`` and hold ``roles`` in background threads until ``stop``."""

    def __init__(
        self,
        engine: Engine,
        locks: Locks,
        *,
        jobs: list[Job],
        roles: list[Role] | None = None,
        poll_s: float = 2.0,
        holder: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.locks = locks
        self.jobs = list(jobs)
        self.roles = list(roles or [])
        self.poll_s = poll_s
        self.holder = holder or holder_name()
        self.clock = clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start one thread per job and per role."""
        self._stop.clear()
        targets = [(job.name, partial(self._run_job, job)) for job in self.jobs]
        targets += [(role.name, partial(self._hold_role, role)) for role in self.roles]
        for name, target in targets:
            thread = threading.Thread(target=target, name=f"nx-job-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the runs in hand, drop roles and give up the locks."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self.locks.close()

    # -- one job ----------------------------------------------------------------

    def _run_job(self, job: Job) -> None:
        done: datetime | None = None
        while not self._stop.is_set():
            wait = self.poll_s
            try:
                if self.locks.hold(job.name):
                    now = self.clock()
                    start = period_start(now, job.period_s)
                    if done is None or start > done:
                        self.run_period(job, start, now)
                        done = start
                    following = start + timedelta(seconds=job.period_s)
                    wait = min(wait, max(0.0, (following - self.clock()).total_seconds()))
                else:
                    done = None
            except DBAPIError as exc:
                # The database went away: try again, the run log keeps it once per period.
                log.warning("job %s: %s; retrying", job.name, exc.orig)
            except Exception:
                log.exception("job %s: unexpected error", job.name)
            self._stop.wait(wait)

    def run_period(self, job: Job, start: datetime, now: datetime) -> bool:
        """Claim the period at ``start`` and run ``job`` if nobody did; say whether it ran."""
        if not self.locks.shared:
            return self._run_unlogged(job, now)
        if job.work is not None:
            try:
                with session_scope(self.engine) as session:
                    run_id = claim_period(session, job.name, start, self.holder)
                    if run_id is None:
                        return False
                    job.work(session, now)
                    finish_run(session, run_id, None)
                return True
            except DBAPIError:
                raise  # the database, not the job: the caller tries again this period
            except Exception as exc:
                error: str | None = self._failed(job, exc)
            with session_scope(self.engine) as session:
                run_id = claim_period(session, job.name, start, self.holder)
                if run_id is not None:
                    finish_run(session, run_id, error)
            return run_id is not None
        with session_scope(self.engine) as session:
            run_id = claim_period(session, job.name, start, self.holder)
        if run_id is None:
            return False
        error = None
        try:
            if job.run is not None:
                job.run(now)
        except Exception as exc:
            error = self._failed(job, exc)
        with session_scope(self.engine) as session:
            finish_run(session, run_id, error)
        return True

    def _run_unlogged(self, job: Job, now: datetime) -> bool:
        # One process per job on one machine: nothing to claim, nothing to log.
        try:
            if job.work is not None:
                with session_scope(self.engine) as session:
                    job.work(session, now)
            elif job.run is not None:
                job.run(now)
        except DBAPIError:
            raise
        except Exception as exc:
            self._failed(job, exc)
        return True

    @staticmethod
    def _failed(job: Job, exc: Exception) -> str:
        # One failed run (database away, a bug) must not end the schedule.
        log.error("job %s failed (%s); the next period runs it again", job.name, exc,
                  exc_info=exc)
        return f"{type(exc).__name__}: {exc}"

    # -- one role ---------------------------------------------------------------

    def _hold_role(self, role: Role) -> None:
        active = False
        try:
            while not self._stop.is_set():
                try:
                    held = self.locks.hold(role.name)
                    if held and not active:
                        log.info("role %s taken by %s", role.name, self.holder)
                        role.take()
                        active = True
                    elif active and not held:
                        log.warning("role %s lost by %s", role.name, self.holder)
                        active = False
                        role.drop()
                except Exception:
                    log.exception("role %s: unexpected error", role.name)
                self._stop.wait(self.poll_s)
        finally:
            if active:
                role.drop()
