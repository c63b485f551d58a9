"""What the soak benchmark measures: a process's memory, open files and threads over a run.

A ``Sampler`` thread reads ``/proc/<pid>/status`` (VmRSS, Threads) and counts
``/proc/<pid>/fd`` for a set of processes (a worker and its children) every
``interval`` seconds, tagging each sample with the run's progress (events or
messages so far). ``growth`` compares the first tenth of the run with its end:
the peak in the progress window (5%, 10%] against the peak in (95%, 100%], so
that both sides are the same kind of figure (a peak over the same share of the
work) and warm-up, which fills caches and pools once, is not counted as
growth. A least-squares slope over 10%..100% is given beside it: a leak shows
as a steady slope even when one window happens to catch a peak.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BASELINE = (0.05, 0.10)
END = (0.95, 1.0)


@dataclass(frozen=True)
class Sample:
    """One reading of every watched process, summed."""

    at: float
    progress: int
    rss_mb: float
    fds: int
    threads: int


def read_status(pid: int) -> tuple[float, int]:
    """Return (VmRSS in MB, threads) of ``pid`` from /proc/<pid>/status."""
    rss_kb = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss_kb / 1024, threads


def open_fds(pid: int) -> int:
    """Return how many file descriptors ``pid`` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[int]:
    """Return the direct children of ``pid`` (every thread's), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended between the listing and the read
    return found


class Sampler:
    """Sample ``pids()`` every ``interval`` s in a thread; ``progress()`` tags each sample."""

    def __init__(self, pids: Callable[[], list[int]], progress: Callable[[], int],
                 interval: float = 0.5) -> None:
        self._pids = pids
        self._progress = progress
        self._interval = interval
        self.samples: list[Sample] = []
        self.per_pid: dict[int, list[tuple[int, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self) -> Sampler:
        """Take a first sample now and then keep sampling."""
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take a last sample and stop."""
        self._stop.set()
        self._thread.join(30)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> None:
        """Read every watched process once; a process gone mid-read is skipped this time."""
        progress = self._progress()
        rss = 0.0
        fds = threads = 0
        for pid in self._pids():
            try:
                one_rss, one_threads = read_status(pid)
                one_fds = open_fds(pid)
            except (OSError, ValueError):
                continue
            rss += one_rss
            fds += one_fds
            threads += one_threads
            self.per_pid.setdefault(pid, []).append((progress, one_rss))
        self.samples.append(Sample(time.monotonic(), progress, rss, fds, threads))


def _window(samples: list[Sample], total: int, share: tuple[float, float]) -> list[Sample]:
    low, high = share[0] * total, share[1] * total
    inside = [s for s in samples if low < s.progress <= high]
    if inside:
        return inside
    # A short run may have no sample inside a window: take the nearest one.
    middle = (low + high) / 2
    return [min(samples, key=lambda s: abs(s.progress - middle))]


def _slope_per(samples: list[Sample], per: int) -> float:
    """Least-squares slope of RSS against progress, in MB per ``per`` units of progress."""
    if len(samples) < 2:
        return 0.0
    xs = [float(s.progress) for s in samples]
    ys = [s.rss_mb for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return 0.0
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return cov / var * per


def growth(samples: list[Sample], total: int, per: int = 100_000) -> dict[str, float | int]:
    """Return RSS, fd and thread growth from the first 10% of ``total`` to the end."""
    base = _window(samples, total, BASELINE)
    end = _window(samples, total, END)
    after = [s for s in samples if s.progress > BASELINE[1] * total] or samples
    return {
        "rss_baseline_mb": round(max(s.rss_mb for s in base), 2),
        "rss_end_mb": round(max(s.rss_mb for s in end), 2),
        "rss_growth_mb": round(max(s.rss_mb for s in end) - max(s.rss_mb for s in base), 2),
        "rss_max_mb": round(max(s.rss_mb for s in samples), 2),
        "rss_slope_mb_per_100k": round(_slope_per(after, per), 3),
        "fds_baseline": max(s.fds for s in base),
        "fds_end": max(s.fds for s in end),
        "fd_growth": max(s.fds for s in end) - max(s.fds for s in base),
        "threads_baseline": max(s.threads for s in base),
        "threads_end": max(s.threads for s in end),
        "thread_growth": max(s.threads for s in end) - max(s.threads for s in base),
        "samples": len(samples),
    }


def growth_of(readings: list[tuple[int, float]], total: int) -> dict[str, float]:
    """RSS growth of one process from (progress, RSS MB) readings, as ``growth`` computes it."""
    samples = [Sample(0.0, progress, rss, 0, 0) for progress, rss in readings]
    base = _window(samples, total, BASELINE)
    end = _window(samples, total, END)
    return {"rss_baseline_mb": round(max(s.rss_mb for s in base), 2),
            "rss_end_mb": round(max(s.rss_mb for s in end), 2),
            "rss_growth_mb": round(max(s.rss_mb for s in end) - max(s.rss_mb for s in base), 2)}


def curve(samples: list[Sample], points: int = 21) -> list[list[float]]:
    """Return about ``points`` (progress, RSS MB, fds, threads) rows spread over the run."""
    if not samples:
        return []
    step = max(1, len(samples) // (points - 1))
    chosen = samples[::step]
    if chosen[-1] is not samples[-1]:
        chosen.append(samples[-1])
    return [[s.progress, round(s.rss_mb, 2), s.fds, s.threads] for s in chosen]
