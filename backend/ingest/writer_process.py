"""Run a worker's ``Committer`` in a child process, so that it has a GIL of its own.

An ingest worker does two CPU-bound jobs: paho's network thread parses MQTT
packets, and the writer validates and stores them. In one process they take
turns on one interpreter lock, so a worker never uses more than one core
(measured: ~45 us per message each). Here the writer's half runs in a child
process; the parent keeps the MQTT session and the acknowledgements, so the
delivery contract does not change: a message is acked only after the child
reports the transaction that holds it committed.

Over the pipe the parent sends ``("batch", messages)`` and the child answers
each, in order, with ``("result", BatchResult | None)``; ``("stop",)`` or the
pipe closing ends the child. The parent may send the next batch before the
previous answer arrives (``MAX_IN_FLIGHT``), so that the child is not idle
while the parent acknowledges and gathers. If the child dies, the parent
starts another and sends it every batch still unanswered: nothing of those was
acked, and the unique event keys drop whatever the dead child had committed.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

from backend.config import Settings
from backend.db import make_engine
from backend.ingest.committer import Committer
from backend.ingest.parse import Message
from backend.ingest.store import BatchResult

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.2
"""How often an idle child wakes to run maintenance, and the parent to check on the child."""
STOP_TIMEOUT_S = 10.0
MAX_IN_FLIGHT = 2
"""Batches sent to the child and not yet answered: one committing, one waiting."""


class _Requests:
    """The child's end of the pipe: batches in order, and whether a stop came."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.waiting: deque[list[Message]] = deque()
        self.stopped = False

    def _read(self) -> None:
        try:
            request = self.conn.recv()
        except EOFError:
            self.stopped = True
            return
        if request[0] == "batch":
            self.waiting.append(request[1])
        else:
            self.stopped = True

    def stop_wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a stop, keeping any batch that arrives meanwhile."""
        deadline = time.monotonic() + timeout
        while not self.stopped:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.conn.poll(remaining):
                break
            self._read()
        return self.stopped

    def next_batch(self, timeout: float) -> list[Message] | None:
        """Return the next batch, or None after ``timeout`` or a stop."""
        if not self.waiting and not self.stopped and self.conn.poll(timeout):
            self._read()
        return self.waiting.popleft() if self.waiting and not self.stopped else None


def _child_main(settings: Settings, conn: Connection, log_level: int, log_format: str) -> None:
    """The child: commit each batch it is sent until told to stop or the parent is gone."""
    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the
    # parent decides when the writer stops, after its last batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format=log_format)
    engine = make_engine(settings.database_url, immediate=True,
                         dead_link_s=settings.database_dead_link_s)
    requests = _Requests(conn)
    committer = Committer(settings, engine, stop_wait=requests.stop_wait)
    try:
        conn.send(("ready", None))
        while not requests.stopped:
            batch = requests.next_batch(IDLE_POLL_S)
            if batch is not None:
                conn.send(("result", committer.commit(batch)))
            # Also between batches, once its answer is sent: a writer that is never idle
            # still owes gap timeouts, the offline watchdog and retention when they fall
            # due (maintain() returns at once when they do not).
            committer.maintain()
    except (BrokenPipeError, EOFError):
        pass  # the parent is gone; it acked nothing we did not report
    finally:
        engine.dispose()


class _ChildGoneError(Exception):
    """The child process ended or its pipe broke."""


class CommitterProcess:
    """The ``Committer`` interface, served by a child process."""

    max_in_flight = MAX_IN_FLIGHT

    def __init__(self, settings: Settings, name: str, stopping: threading.Event) -> None:
        self.settings = settings
        self.name = name
        self._stopping = stopping
        self._context = multiprocessing.get_context("spawn")
        self._process: SpawnProcess | None = None
        self._conn: Connection | None = None
        self._in_flight: deque[list[Message]] = deque()
        self.restarts = 0

    def start(self) -> None:
        """Start the child and wait until it is ready to commit."""
        parent_end, child_end = self._context.Pipe()
        root = logging.getLogger()
        formatter = root.handlers[0].formatter if root.handlers else None
        log_format = getattr(formatter, "_fmt", None) or logging.BASIC_FORMAT
        process = self._context.Process(
            target=_child_main,
            args=(self.settings, child_end, root.level, log_format),
            name=self.name,
            daemon=True,  # never outlive the worker, whatever ends it
        )
        process.start()
        child_end.close()
        self._process, self._conn = process, parent_end
        while not parent_end.poll(IDLE_POLL_S):
            if not process.is_alive():
                raise RuntimeError(f"{self.name} exited with code {process.exitcode} on start")
        parent_end.recv()
        log.info("%s started (pid %d)", self.name, process.pid)

    def submit(self, messages: list[Message]) -> None:
        """Send a batch to the child; ``result()`` answers batches in the order sent."""
        self._in_flight.append(messages)
        with contextlib.suppress(_ChildGoneError):  # result() restarts it and sends again
            self._send(("batch", messages))

    def result(self) -> BatchResult | None:
        """Wait for the oldest batch's result; None if the worker stops first."""
        while True:
            try:
                result = self._receive()
            except _ChildGoneError:
                exitcode = self._reap()
                if self._stopping.is_set():
                    return None
                log.error(
                    "%s died (exit code %s); starting another and sending it %d unanswered "
                    "batches again",
                    self.name,
                    exitcode,
                    len(self._in_flight),
                )
                self.restarts += 1
                self.start()
                for batch in self._in_flight:
                    with contextlib.suppress(_ChildGoneError):
                        self._send(("batch", batch))
                continue
            self._in_flight.popleft()
            return result

    def commit(self, messages: list[Message]) -> BatchResult | None:
        """Commit one batch and wait for it."""
        self.submit(messages)
        return self.result()

    def _send(self, request: tuple[Any, ...]) -> None:
        if self._conn is None:
            raise _ChildGoneError
        try:
            self._conn.send(request)
        except OSError as exc:
            raise _ChildGoneError from exc

    def _receive(self) -> BatchResult | None:
        conn, process = self._conn, self._process
        if conn is None or process is None:
            raise _ChildGoneError
        asked_to_stop = False
        while True:
            try:
                if conn.poll(IDLE_POLL_S):
                    result: BatchResult | None = conn.recv()[1]
                    return result
            except (EOFError, OSError) as exc:
                raise _ChildGoneError from exc
            if not process.is_alive():
                raise _ChildGoneError
            if self._stopping.is_set() and not asked_to_stop:
                # A child retrying an unreachable database gives up the batch.
                self._send_stop()
                asked_to_stop = True

    def _reap(self) -> int | None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        process.join(STOP_TIMEOUT_S)
        return process.exitcode

    def maintain(self) -> None:
        """Nothing to do here: the child maintains between batches when upkeep is due."""

    def discard(self) -> None:
        """Forget the unanswered batches (not acked); a fresh child answers no stale one."""
        if self._in_flight:
            self._in_flight.clear()
            if self._process is not None:
                self._process.kill()
            self._reap()
            self.start()

    def close(self) -> None:
        """Stop the child after the batch in hand; unanswered batches are not acked."""
        if self._process is None or self._conn is None:
            return
        self._send_stop()
        self._process.join(STOP_TIMEOUT_S)
        if self._process.is_alive():
            log.warning("%s did not stop in %.0f s; killing it", self.name, STOP_TIMEOUT_S)
            self._process.kill()
        self._reap()
        self._in_flight.clear()

    def _send_stop(self) -> None:
        with contextlib.suppress(_ChildGoneError):
            self._send(("stop",))
