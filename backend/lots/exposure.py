"""How long a machine (and so each lot in it) spent outside naloxone's temperature ranges.

Pure: given the machine's temperature readings (event crossings and heartbeat
readings, in time order) and a window, add up the time outside the labelled
storage range (15-25 °C), outside the permitted excursion range (4-40 °C) and
below freezing. A reading holds until the next one, but never longer than
``max_hold``: a silent machine's last reading is not stretched over days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

STORAGE_RANGE = (15.0, 25.0)
"""Nasal naloxone's labelled storage range, °C."""
EXCURSION_RANGE = (4.0, 40.0)
"""The range it may briefly be outside storage in, °C."""
FREEZING_C = 0.0

Reading = tuple[datetime, float]


@dataclass(frozen=True)
class Exposure:
    """Time spent outside each range in a window, and the extremes seen."""

    outside_storage: timedelta = field(default=timedelta())
    outside_excursion: timedelta = field(default=timedelta())
    below_freezing: timedelta = field(default=timedelta())
    min_c: float | None = None
    max_c: float | None = None


@dataclass(frozen=True)
class Limits:
    """How much exposure a lot may have before it must be replaced."""

    outside_storage: timedelta
    outside_excursion: timedelta
    below_freezing: timedelta

    def exceeded(self, exposure: Exposure) -> list[str]:
        """Return the ranges whose limit ``exposure`` passed (empty: the lot is fine)."""
        passed = []
        if exposure.outside_storage > self.outside_storage:
            passed.append("storage_range")
        if exposure.outside_excursion > self.outside_excursion:
            passed.append("excursion_range")
        if exposure.below_freezing > self.below_freezing:
            passed.append("freezing")
        return passed


def _outside(celsius: float, bounds: tuple[float, float]) -> bool:
    return celsius < bounds[0] or celsius > bounds[1]


def exposure(
    readings: Sequence[Reading], start: datetime, end: datetime, *, max_hold: timedelta
) -> Exposure:
    """Add up the time in ``[start, end)`` spent outside each range.

    A reading taken before ``start`` tells the temperature at ``start``;
    ``readings`` must be sorted by time.
    """
    storage = excursion = freezing = timedelta()
    low: float | None = None
    high: float | None = None
    for i, (at, celsius) in enumerate(readings):
        until = readings[i + 1][0] if i + 1 < len(readings) else end
        until = min(until, at + max_hold, end)
        begin = max(at, start)
        if until <= begin:
            continue
        span = until - begin
        low = celsius if low is None else min(low, celsius)
        high = celsius if high is None else max(high, celsius)
        if _outside(celsius, STORAGE_RANGE):
            storage += span
        if _outside(celsius, EXCURSION_RANGE):
            excursion += span
        if celsius < FREEZING_C:
            freezing += span
    return Exposure(storage, excursion, freezing, low, high)


KEEP_STEP_C = 0.5
"""A heartbeat reading this far from the last kept one is kept."""
KEEP_EVERY = timedelta(minutes=30)
"""A heartbeat reading this long after the last kept one is kept (under the hold time)."""


def _band(celsius: float) -> tuple[bool, bool, bool]:
    return (_outside(celsius, STORAGE_RANGE), _outside(celsius, EXCURSION_RANGE),
            celsius < FREEZING_C)


def worth_keeping(last: Reading | None, new: Reading) -> bool:
    """Say whether to store a heartbeat reading, given the last one stored for its machine.

    A reading that changes which ranges the machine is outside of is always
    kept, so the exposure sums over the kept readings equal those over all of
    them; the rest thin a 60 s heartbeat to about two rows an hour.
    """
    if last is None or new[0] < last[0]:
        return True
    return (_band(new[1]) != _band(last[1]) or abs(new[1] - last[1]) >= KEEP_STEP_C
            or new[0] - last[0] >= KEEP_EVERY)
