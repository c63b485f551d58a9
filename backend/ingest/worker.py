"""The ingest worker: drains the paho queue in batches, commits, then acknowledges."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from backend.config import Settings
from backend.db import check_schema, make_engine
from backend.ingest.broker_watch import BrokerWatch
from backend.ingest.committer import Committer
from backend.ingest.mqtt import Delivery, Inbox, IngestClient
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.ingest.writer_process import CommitterProcess
from backend.jobs import Coordinator, Role, make_locks
from backend.jobs.catalog import BROKER_WATCH, RETAINED_READER, ingest_jobs
from backend.metrics import IngestMetrics

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.2
"""How often an idle writer wakes to notice a stop."""


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
    """One ingest worker: an MQTT session, a writer thread, and its share of the jobs.

    With ``jobs`` (the default) it also competes for the periodic ingest jobs
    (delivery gaps, offline watchdog, dead letters; backend/jobs) and for the
    retained-reader role; on SQLite only worker 0 reads the retained topics.
    """

    def __init__(
        self,
        settings: Settings,
        worker_index: int = 0,
        *,
        registry: CollectorRegistry | None = None,
        engine: Engine | None = None,
        jobs: bool = True,
    ) -> None:
        self.settings = settings
        self.worker_index = worker_index
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = IngestMetrics.create(self.registry)
        self.engine = engine or make_engine(
            settings.database_url, immediate=True, dead_link_s=settings.database_dead_link_s)
        self._own_engine = engine is None
        self.inbox = Inbox(settings.ingest_inbox_max, self.metrics, f"ingest-{worker_index}")
        self.metrics.inbox_depth.set_function(self.inbox.qsize)
        self.client = IngestClient(settings, worker_index, self.inbox)
        self.retained = IngestClient(settings, worker_index, self.inbox, retained_reader=True)
        self.broker_watch = BrokerWatch(settings, worker_index, self.engine,
                                        self.metrics.broker_dropped)
        self.coordinator = self._coordinator() if jobs else None
        self._stop = threading.Event()
        self.committer: Committer | CommitterProcess
        if settings.ingest_writer_process:
            self.committer = CommitterProcess(settings, f"ingest-{worker_index}-writer", self._stop)
        else:
            self.committer = Committer(settings, self.engine, self._stop.wait)
        self._thread: threading.Thread | None = None
        self.batches = 0

    @property
    def writer(self) -> BatchWriter:
        """The batch writer, when it runs in this process (tests wrap it)."""
        if not isinstance(self.committer, Committer):
            raise AttributeError("the writer runs in a child process")
        return self.committer.writer

    def _coordinator(self) -> Coordinator:
        def grant(name: str) -> bool:
            # SQLite is one machine: keep the retained topics and the broker watch on
            # worker 0 as before.
            return name not in (RETAINED_READER, BROKER_WATCH) or self.worker_index == 0

        locks = make_locks(self.settings.database_url, grant,
                           self.settings.database_dead_link_s)
        return Coordinator(
            self.engine,
            locks,
            # On SQLite the writer maintains when idle, as it always did (Committer.maintain).
            jobs=ingest_jobs(self.settings) if locks.shared else [],
            roles=[Role(RETAINED_READER, self.retained.start, self.retained.stop),
                   *([Role(BROKER_WATCH, self.broker_watch.take, self.broker_watch.drop)]
                     if self.settings.ingest_broker_watch else [])],
            poll_s=self.settings.jobs_poll_s,
        )

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Check the schema, start the writer thread, and connect to the broker."""
        check_schema(self.engine)
        if self._own_engine:
            # Give back the check's connection: a writer in a child process has an
            # engine of its own, and an in-process one reconnects when it needs to.
            self.engine.dispose()
        self._stop.clear()
        self.committer.start()
        self._thread = threading.Thread(
            target=self._run, name=f"ingest-{self.worker_index}", daemon=True
        )
        self._thread.start()
        self.client.start()
        if self.coordinator is not None:
            self.coordinator.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect, finish the batch in hand, and stop; unacked messages stay queued."""
        if self.coordinator is not None:
            self.coordinator.stop()
        self.client.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.committer.close()
        if self._own_engine:
            self.engine.dispose()

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait until the broker granted the subscriptions."""
        return self.client.subscribed.wait(timeout)

    # -- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        # Batches handed to the committer and not yet answered, oldest first. With a
        # child process the next batch is sent before the previous one's acks, so
        # the child commits while this thread acknowledges and gathers.
        in_flight: deque[tuple[list[Delivery], float]] = deque()
        while not self._stop.is_set():
            try:
                if len(in_flight) >= self.committer.max_in_flight:
                    self._finish(in_flight.popleft())
                if not in_flight:
                    # Between batches, not only when idle: under a stream that never
                    # pauses, upkeep still runs when due (maintain() is cheap otherwise).
                    self.committer.maintain()
                batch = collect_batch(
                    self.inbox,
                    max_size=self.settings.ingest_batch_max_size,
                    max_wait_s=self.settings.ingest_batch_max_wait_s,
                    linger_s=self.settings.ingest_batch_linger_s,
                    # Something to answer: look for more only briefly.
                    poll_s=self.settings.ingest_batch_linger_s if in_flight else IDLE_POLL_S,
                )
                if batch:
                    self.metrics.messages_in.inc(len(batch))
                    messages = [Message(d.topic, d.payload, d.received_at) for d in batch]
                    self.committer.submit(messages)
                    in_flight.append((batch, time.perf_counter()))
                elif in_flight:
                    self._finish(in_flight.popleft())
            except Exception:
                # Unacked messages come back when the session reconnects; the
                # writer itself must not die.
                log.exception("ingest writer %d: unexpected error", self.worker_index)
                in_flight.clear()
                self._stop.wait(self.settings.ingest_retry_backoff_s)
                try:
                    self.committer.discard()
                except Exception:
                    log.exception("ingest writer %d: could not reset", self.worker_index)

    def _finish(self, submitted: tuple[list[Delivery], float]) -> None:
        batch, started = submitted
        result = self.committer.result()
        if result is None:
            return  # stopping; nothing acked, the broker redelivers
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        # Count before acking: the rows are visible from the commit on, and the
        # acks (a lock and a packet each) would widen the gap between the two.
        self.metrics.committed.inc(result.stored)
        self.metrics.duplicates.inc(result.duplicates)
        self.metrics.dead_letters.inc(result.dead_letters)
        self.metrics.dead_letters_dropped.inc(result.dead_letters_dropped)
        self.metrics.batch_retries.inc(result.retries)
        for delivery in batch:
            (self.retained if delivery.retained_reader else self.client).ack(delivery)
        self.batches += 1
