"""The ingest worker: drains the paho queue in batches, commits, then acknowledges."""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from backend.config import Settings
from backend.db import check_schema, make_engine
from backend.dbutil import insert_ignore
from backend.ingest.maintenance import mark_silent_machines, scan_delivery_gaps
from backend.ingest.mqtt import Delivery, Inbox, IngestClient
from backend.ingest.parse import Message, Rejected
from backend.ingest.store import BatchResult, BatchWriter, dead_letter_rows
from backend.metrics import IngestMetrics
from backend.models import DeadLetter, utcnow

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.2
"""How often an idle writer wakes to run maintenance and notice a stop."""


def collect_batch(
    inbox: queue.Queue[Delivery],
    *,
    max_size: int,
    max_wait_s: float,
    linger_s: float,
    poll_s: float = IDLE_POLL_S,
) -> list[Delivery]:
    """Block up to ``poll_s`` for a first message, then gather more within the bounds."""
    try:
        first = inbox.get(timeout=poll_s)
    except queue.Empty:
        return []
    batch = [first]
    deadline = time.monotonic() + max_wait_s
    while len(batch) < max_size:
        try:
            batch.append(inbox.get_nowait())
            continue
        except queue.Empty:
            pass
        remaining = min(linger_s, deadline - time.monotonic())
        if remaining <= 0:
            break
        try:
            batch.append(inbox.get(timeout=remaining))
        except queue.Empty:
            break
    return batch


class IngestWorker:
    """One ingest worker: an MQTT session, a writer thread and periodic maintenance."""

    def __init__(
        self,
        settings: Settings,
        worker_index: int = 0,
        *,
        registry: CollectorRegistry | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.worker_index = worker_index
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = IngestMetrics.create(self.registry)
        self.engine = engine or make_engine(settings.database_url, immediate=True)
        self._own_engine = engine is None
        self.inbox = Inbox(settings.ingest_inbox_max, self.metrics, f"ingest-{worker_index}")
        self.metrics.inbox_depth.set_function(self.inbox.qsize)
        self.client = IngestClient(settings, worker_index, self.inbox)
        self.writer = BatchWriter(default_low_threshold=settings.default_low_threshold)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_maintenance = 0.0
        self.batches = 0

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Check the schema, start the writer thread, and connect to the broker."""
        check_schema(self.engine)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"ingest-{self.worker_index}", daemon=True
        )
        self._thread.start()
        self.client.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect, finish the batch in hand, and stop; unacked messages stay queued."""
        self.client.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._own_engine:
            self.engine.dispose()

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait until the broker granted the subscriptions."""
        return self.client.subscribed.wait(timeout)

    # -- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = collect_batch(
                    self.inbox,
                    max_size=self.settings.ingest_batch_max_size,
                    max_wait_s=self.settings.ingest_batch_max_wait_s,
                    linger_s=self.settings.ingest_batch_linger_s,
                )
                if batch:
                    self._handle(batch)
                self._maybe_maintain()
            except Exception:
                # Unacked messages come back when the session reconnects; the
                # writer itself must not die.
                log.exception("ingest writer %d: unexpected error", self.worker_index)
                self._stop.wait(self.settings.ingest_retry_backoff_s)

    def _handle(self, batch: list[Delivery]) -> None:
        self.metrics.messages_in.inc(len(batch))
        started = time.perf_counter()
        result = self._commit_with_retry(batch)
        if result is None:
            return  # stopping; nothing acked, the broker redelivers
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        # Count before acking: the rows are visible from the commit on, and the
        # acks (a lock and a packet each) would widen the gap between the two.
        self.metrics.committed.inc(result.stored)
        self.metrics.duplicates.inc(result.duplicates)
        self.metrics.dead_letters.inc(result.dead_letters)
        for delivery in batch:
            self.client.ack(delivery)
        self.batches += 1

    def _commit_with_retry(self, batch: list[Delivery]) -> BatchResult | None:
        messages = [Message(d.topic, d.payload, d.received_at) for d in batch]
        while not self._stop.is_set():
            try:
                try:
                    return self._commit(messages)
                except OperationalError:
                    raise
                except DBAPIError as exc:
                    # The database refused something in the batch: find it message by message.
                    log.warning(
                        "batch of %d refused by the database (%s); splitting it",
                        len(batch),
                        exc.orig,
                    )
                    return self._commit_one_by_one(messages)
                except Exception:
                    # A bug of ours rather than bad input: say so loudly, keep ingesting.
                    log.exception("batch of %d failed; splitting it", len(batch))
                    return self._commit_one_by_one(messages)
            except OperationalError as exc:
                # Locked, deadlocked or unreachable database: try the same batch again.
                self.metrics.batch_retries.inc()
                log.warning("batch of %d not committed (%s); retrying", len(batch), exc.orig)
                self._stop.wait(self.settings.ingest_retry_backoff_s)
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
        return total

    def _maybe_maintain(self) -> None:
        now_mono = time.monotonic()
        if now_mono < self._next_maintenance:
            return
        self._next_maintenance = now_mono + self.settings.ingest_maintenance_interval_s
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                now = utcnow()
                scan_delivery_gaps(
                    session, now=now, timeout=timedelta(seconds=self.settings.gap_timeout_s)
                )
                mark_silent_machines(
                    session, now=now, timeout=timedelta(seconds=self.settings.offline_timeout_s)
                )
                session.commit()
        except OperationalError as exc:
            log.warning("maintenance skipped: %s", exc.orig)
