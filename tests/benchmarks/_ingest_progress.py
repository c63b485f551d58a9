"""How far an ingest worker has got, from its metrics, and a gate that paces a fleet by it.

The soak's fleet must never outrun the worker: what it publishes and the worker
has not finished with waits in the broker's queue for the worker's session,
and once that queue holds ``max_queued_messages`` Mosquitto drops what comes
next, after it has acknowledged it to the machine (a soak run lost 15,626
messages that way). ``ProgressGate`` keeps published minus finished under a
bound, well below the broker's queue, as the fault rig paces its controller by
the messages not yet acknowledged.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable

COUNTERS = ("messages_committed", "duplicates", "dead_letters", "dead_letters_dropped")


def counters(metrics_url: str) -> dict[str, int]:
    """The worker's message counters; empty if its metrics do not answer."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as answer:  # noqa: S310 - loopback
            text = answer.read().decode()
    except OSError:
        return {}
    return parse_counters(text)


def parse_counters(text: str) -> dict[str, int]:
    """Read ``COUNTERS`` from a Prometheus text exposition (absent ones are 0)."""
    found: dict[str, int] = {}
    for name in COUNTERS:
        match = re.search(rf"^nx_ingest_{name}_total (\S+)$", text, re.MULTILINE)
        found[name] = int(float(match.group(1))) if match else 0
    return found


def finished(found: dict[str, int]) -> int:
    """Messages the worker finished with, each once: a redelivered duplicate is not counted."""
    return (found.get("messages_committed", 0) + found.get("dead_letters", 0)
            + found.get("dead_letters_dropped", 0))


class ProgressGate:
    """Admit a publish only while fewer than ``ahead`` published messages are unfinished.

    A poller thread reads ``progress()`` every ``poll_s`` seconds; a reading of
    None (the metrics did not answer) keeps the last one. ``admit`` raises
    after ``timeout`` seconds without room, so a stuck worker fails the run.

    Every ``quiet_every`` messages (0: never) the fleet waits until the worker
    has finished everything and then stays quiet for ``quiet_s``: a fleet's
    night. On SQLite the writer runs its upkeep (gap scan, offline watchdog,
    retention) only when idle, so a fleet that never lets up would keep it
    from ever running, and the soak would measure a worker that does not
    exist (in the first 2,000,000-message run the upkeep's one catch-up at
    the end read 50,000 seqs per machine and added 8 MB there).
    """

    def __init__(self, progress: Callable[[], int | None], ahead: int, *,
                 poll_s: float = 0.2, timeout: float = 600.0, quiet_every: int = 0,
                 quiet_s: float = 0.0) -> None:
        self.ahead = ahead
        self.quiet_every = quiet_every
        self.quiet_s = quiet_s
        self.quiet_spells = 0
        self._quiet_at = 0
        self._quiet_until = 0.0
        self.published = 0
        self.finished = 0
        self.waits = 0
        """Publishes that found the gate shut: how often the fleet was held back."""
        self._progress = progress
        self._poll_s = poll_s
        self._timeout = timeout
        self._room = threading.Condition()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="progress-gate", daemon=True)

    def start(self) -> ProgressGate:
        """Start reading the progress."""
        self._poller.start()
        return self

    def stop(self) -> None:
        """Stop reading the progress."""
        self._stop.set()
        self._poller.join(30)

    def admit(self) -> None:
        """Return when one more message may be published (and count it as published)."""
        with self._room:
            # Every wait lets other publishers in: look at everything again after each.
            while True:
                if self._quiet_due():
                    self._wait(lambda: self.finished >= self.published, "to finish everything")
                    if self._quiet_due():  # the first publisher here starts the spell
                        self._quiet_at = self.published
                        self._quiet_until = time.monotonic() + self.quiet_s
                        self.quiet_spells += 1
                elif (left := self._quiet_until - time.monotonic()) > 0:
                    self._room.wait(left)
                elif self.published - self.finished >= self.ahead:
                    self.waits += 1
                    self._wait(lambda: self.published - self.finished < self.ahead, "for room")
                else:
                    self.published += 1
                    return

    def _quiet_due(self) -> bool:
        return (self.quiet_every > 0 and self.published > 0
                and self.published % self.quiet_every == 0 and self._quiet_at != self.published)

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        if not self._room.wait_for(done, timeout=self._timeout):
            raise AssertionError(f"ingest stuck at {self.finished} of {self.published} "
                                 f"published for {self._timeout} s, waiting {what}")

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_s):
            self.record(self._progress())

    def record(self, value: int | None) -> None:
        """Take one progress reading and wake publishers if it made room."""
        if value is None:
            return
        with self._room:
            self.finished = max(self.finished, value)
            self._room.notify_all()


def metrics_progress(metrics_url: str) -> Callable[[], int | None]:
    """Return a progress reader for ``ProgressGate`` from an ingest metrics URL."""

    def read() -> int | None:
        found = counters(metrics_url)
        return finished(found) if found else None

    return read

