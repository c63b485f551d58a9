"""The demand model: how many people take something from a machine, and when.

Counts are Poisson with a rate that follows a time-of-day and a day-of-week
shape around each machine's daily mean. Pure: the caller passes the random
generator and the (simulated) time, so a seed reproduces a run exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

# Relative demand per hour of the day (0..23), mean 1. Quiet in the early
# morning, rising through the afternoon to an evening peak: the shape
# overdose-response and harm-reduction services commonly report.
_HOURLY_RAW = (
    0.55, 0.45, 0.35, 0.30, 0.25, 0.25, 0.35, 0.50,
    0.70, 0.85, 1.00, 1.10, 1.20, 1.30, 1.40, 1.50,
    1.55, 1.60, 1.60, 1.55, 1.45, 1.25, 1.00, 0.75,
)  # fmt: skip
HOURLY_SHAPE: tuple[float, ...] = tuple(w * 24 / sum(_HOURLY_RAW) for w in _HOURLY_RAW)

# Relative demand per weekday (Monday = 0), mean 1: a little higher at the weekend.
_WEEKDAY_RAW = (0.92, 0.90, 0.93, 0.97, 1.08, 1.15, 1.05)
WEEKDAY_SHAPE: tuple[float, ...] = tuple(w * 7 / sum(_WEEKDAY_RAW) for w in _WEEKDAY_RAW)

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DemandModel:
    """Daily mean demand per machine, shaped by hour and weekday."""

    hourly: tuple[float, ...] = HOURLY_SHAPE
    weekday: tuple[float, ...] = WEEKDAY_SHAPE

    def __post_init__(self) -> None:
        if len(self.hourly) != 24 or len(self.weekday) != 7:
            raise ValueError("the hourly shape needs 24 weights and the weekday shape 7")
        if min(self.hourly) < 0 or min(self.weekday) < 0:
            raise ValueError("demand weights cannot be negative")

    def factor(self, when: datetime) -> float:
        """Return the demand multiplier at ``when`` (1.0 is an average hour)."""
        return self.hourly[when.hour] * self.weekday[when.weekday()]

    def expected(self, per_day: float, start: datetime, end: datetime) -> float:
        """Return the expected count between ``start`` and ``end`` for a mean of ``per_day``."""
        if end <= start:
            return 0.0
        total = 0.0
        cursor = start
        # Integrate the step function hour by hour, splitting at hour boundaries.
        while cursor < end:
            boundary = cursor.replace(minute=0, second=0, microsecond=0) + HOUR
            stop = min(boundary, end)
            total += self.factor(cursor) * (stop - cursor) / HOUR
            cursor = stop
        return per_day / 24.0 * total

    def draw(
        self,
        rng: np.random.Generator,
        per_day: Sequence[float],
        start: datetime,
        end: datetime,
    ) -> list[int]:
        """Return Poisson counts for each machine's daily mean over ``[start, end)``."""
        if any(rate < 0 for rate in per_day):
            raise ValueError("a daily demand cannot be negative")
        factor = self.expected(1.0, start, end)
        counts = rng.poisson(np.asarray(per_day, dtype=float) * factor)
        return [int(c) for c in counts]


def choose_slots(
    rng: np.random.Generator, weights: Sequence[float], count: int
) -> list[int]:
    """Return ``count`` slot indexes chosen with probability proportional to ``weights``."""
    if count <= 0:
        return []
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("at least one slot needs a positive weight")
    probabilities = np.asarray(weights, dtype=float) / total
    return [int(i) for i in rng.choice(len(weights), size=count, p=probabilities)]
