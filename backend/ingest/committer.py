"""Commit batches to the database: retry while it is down, isolate a message it refuses.

A ``Committer`` is what the ingest worker's writer thread hands each batch to. It
returns what the batch did once it is committed (then, and only then, the worker
acknowledges the messages), or ``None`` when the worker is stopping first.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from backend.config import Settings
from backend.dbutil import insert_ignore
from backend.ingest.dead_letters import (
    DeadLetterPolicy,
    dead_letter_rows,
)
from backend.ingest.parse import Message, Rejected
from backend.ingest.quota import Quota
from backend.ingest.store import BatchResult, BatchWriter
from backend.ingest.upkeep import run_lot_check, run_upkeep
from backend.models import DeadLetter, utcnow

log = logging.getLogger(__name__)

StopWait = Callable[[float], bool]
"""Wait up to the given seconds; return True when the worker is stopping."""


def dead_letter_policy(settings: Settings) -> DeadLetterPolicy:
    """Return the per-machine dead-letter quota the settings ask for."""
    return DeadLetterPolicy(
        Quota(count=settings.dead_letter_quota_count, bytes=settings.dead_letter_quota_bytes),
        timedelta(seconds=settings.dead_letter_quota_window_s),
    )


class Committer:
    """Writes batches through one engine, in the calling thread."""

    max_in_flight = 1
    """Batches submitted and not yet committed: here each is committed as its result is asked."""

    def __init__(self, settings: Settings, engine: Engine, stop_wait: StopWait) -> None:
        self.settings = settings
        self.engine = engine
        self.writer = BatchWriter(
            default_low_threshold=settings.default_low_threshold,
            dead_letters=dead_letter_policy(settings),
        )
        self._stop_wait = stop_wait
        self._next_maintenance = 0.0
        self._next_lot_check = 0.0
        self._local = make_url(settings.database_url).get_backend_name() == "sqlite"
        self._submitted: deque[list[Message]] = deque()

    def start(self) -> None:
        """Nothing to start: batches are committed in the caller's thread."""

    def close(self) -> None:
        """Nothing to stop."""

    def submit(self, messages: list[Message]) -> None:
        """Take a batch; ``result()`` commits it."""
        self._submitted.append(messages)

    def result(self) -> BatchResult | None:
        """Commit the oldest submitted batch (see ``commit``)."""
        return self.commit(self._submitted.popleft())

    def discard(self) -> None:
        """Forget the submitted batches (they are not acked; the broker sends them again)."""
        self._submitted.clear()

    def commit(self, messages: list[Message]) -> BatchResult | None:
        """Commit ``messages``; retry while the database is unreachable, until stopped."""
        retries = 0
        while True:
            try:
                try:
                    result = self._commit(messages)
                except OperationalError:
                    raise
                except DBAPIError as exc:
                    # The database refused something in the batch: find it message by message.
                    log.warning(
                        "batch of %d refused by the database (%s); splitting it",
                        len(messages),
                        exc.orig,
                    )
                    result = self._commit_one_by_one(messages)
                except Exception:
                    # A bug of ours rather than bad input: say so loudly, keep ingesting.
                    log.exception("batch of %d failed; splitting it", len(messages))
                    result = self._commit_one_by_one(messages)
                result.retries = retries
                return result
            except OperationalError as exc:
                # Locked, deadlocked or unreachable database: try the same batch again.
                retries += 1
                log.warning("batch of %d not committed (%s); retrying", len(messages), exc.orig)
                if self._stop_wait(self.settings.ingest_retry_backoff_s):
                    return None

    def _commit(self, messages: list[Message]) -> BatchResult:
        with Session(self.engine, expire_on_commit=False) as session:
            result = self.writer.write(session, messages, utcnow())
            session.commit()
            return result

    def _commit_one_by_one(self, messages: list[Message]) -> BatchResult:
        total = BatchResult(received=len(messages))
        for message in messages:
            try:
                part = self._commit([message])
            except OperationalError:
                raise  # the database is unreachable, not this message's fault
            except Exception as exc:
                cause = exc.orig if isinstance(exc, DBAPIError) else exc
                log.warning("message on %s not storable: %r", message.topic, cause)
                reason = f"not storable: {type(cause).__name__}: {str(cause)[:300]}"
                with Session(self.engine) as session:
                    insert_ignore(
                        session, DeadLetter, dead_letter_rows([Rejected(message, reason)])
                    )
                    session.commit()
                total.dead_letters += 1
                continue
            total.stored += part.stored
            total.duplicates += part.duplicates
            total.dead_letters += part.dead_letters
            total.dead_letters_dropped += part.dead_letters_dropped
        return total

    def maintain(self) -> None:
        """Run the ingest upkeep steps (backend/ingest/upkeep.py) once per maintenance interval.

        Only on SQLite (one machine, as always): on PostgreSQL this is the periodic
        job ``ingest-maintenance`` run once across all workers (backend/jobs).
        """
        if not self._local:
            return
        now_mono = time.monotonic()
        if now_mono < self._next_maintenance:
            return
        self._next_maintenance = now_mono + self.settings.ingest_maintenance_interval_s
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                now = utcnow()
                run_upkeep(session, now=now, settings=self.settings)
                if now_mono >= self._next_lot_check:
                    # Expiry and heat change slowly: the lots are looked at less often.
                    self._next_lot_check = now_mono + self.settings.lot_check_interval_s
                    run_lot_check(session, now=now, settings=self.settings)
                session.commit()
        except OperationalError as exc:
            log.warning("maintenance skipped: %s", exc.orig)
