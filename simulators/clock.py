"""An accelerated clock: simulated time runs ``speed`` times faster than real time.

The clock can be held at a chosen moment (while the fleet starts, or while it
replays history step by step) and released to run on from there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta


class SimClock:
    """Map real monotonic time to simulated wall-clock time."""

    def __init__(
        self,
        start: datetime,
        speed: float,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        running: bool = True,
    ) -> None:
        if speed <= 0:
            raise ValueError("the clock speed must be positive")
        if start.tzinfo is None:
            raise ValueError("the simulated start time must be timezone-aware")
        self.start = start
        self.speed = speed
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._base = start
        self._origin: float | None = monotonic() if running else None

    @property
    def running(self) -> bool:
        return self._origin is not None

    def now(self) -> datetime:
        """Return the current simulated time."""
        with self._lock:
            if self._origin is None:
                return self._base
            elapsed = self._monotonic() - self._origin
            return self._base + timedelta(seconds=elapsed * self.speed)

    def hold(self, at: datetime) -> None:
        """Stop the clock at ``at`` (it may only move forward)."""
        now = self.now()
        if at < now:
            raise ValueError(f"the simulated clock cannot go back from {now} to {at}")
        with self._lock:
            self._base, self._origin = at, None

    def release(self) -> None:
        """Let the clock run on from where it is held."""
        with self._lock:
            if self._origin is None:
                self._origin = self._monotonic()

    def real_seconds(self, simulated: timedelta) -> float:
        """Return how many real seconds a simulated span takes."""
        return simulated.total_seconds() / self.speed
