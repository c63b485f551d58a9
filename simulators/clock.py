"""An accelerated clock: simulated time runs ``speed`` times faster than real time."""

from __future__ import annotations

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
    ) -> None:
        if speed <= 0:
            raise ValueError("the clock speed must be positive")
        if start.tzinfo is None:
            raise ValueError("the simulated start time must be timezone-aware")
        self.start = start
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        """Return the current simulated time."""
        return self.start + timedelta(seconds=(self._monotonic() - self._origin) * self.speed)

    def real_seconds(self, simulated: timedelta) -> float:
        """Return how many real seconds a simulated span takes."""
        return simulated.total_seconds() / self.speed
