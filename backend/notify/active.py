"""Time-of-day routing: when a route takes new alerts, in its time zone (pure)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.notify.quiet import parse_clock


@dataclass(frozen=True)
class ActiveHours:
    """From ``start`` to ``until`` local time on ``days`` (0 = Monday; empty: every day).

    ``until`` before ``start`` spans midnight, and such a window belongs to the
    day it starts on: Friday 22:00-06:00 includes Saturday 03:00. ``start`` equal
    to ``until`` is the whole day.
    """

    start: time
    until: time
    days: frozenset[int]
    zone: ZoneInfo

    @classmethod
    def of(cls, start: str | None, until: str | None, days: Collection[int] | None,
           zone: str | None) -> ActiveHours | None:
        """Return a route's active hours, or None when it takes alerts at any time."""
        if not start or not until:
            if not days:
                return None
            start = until = "00:00"
        return cls(parse_clock(start), parse_clock(until), frozenset(days or ()),
                   ZoneInfo(zone or "UTC"))

    def contains(self, moment: datetime) -> bool:
        """Say whether the route is active at ``moment`` (an aware datetime)."""
        local = moment.astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        day = local.date()
        if self.start == self.until:
            inside = True
        elif self.start < self.until:
            inside = self.start <= clock < self.until
        elif clock >= self.start:
            inside = True
        elif clock < self.until:
            inside, day = True, day - timedelta(days=1)
        else:
            inside = False
        return inside and (not self.days or day.weekday() in self.days)
