"""Quiet hours: a route's daily window in its time zone when only critical alerts go out (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def parse_clock(text: str) -> time:
    """Parse ``HH:MM`` (ValueError otherwise)."""
    hours, _, minutes = text.partition(":")
    if len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError(f"{text!r} is not HH:MM")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class QuietHours:
    """From ``start`` to ``end`` local time every day; ``end`` before ``start`` spans midnight."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def of(cls, start: str | None, end: str | None, zone: str | None) -> QuietHours | None:
        """Return a route's quiet hours, or None when it has none."""
        if not start or not end:
            return None
        return cls(parse_clock(start), parse_clock(end), ZoneInfo(zone or "UTC"))

    def contains(self, moment: datetime) -> bool:
        """Say whether ``moment`` falls inside the quiet hours."""
        local = moment.astimezone(self.zone).time().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, moment: datetime) -> datetime:
        """Return when the quiet hours holding ``moment`` end (the next ``end`` local time)."""
        local = moment.astimezone(self.zone)
        end = datetime.combine(local.date(), self.end, tzinfo=self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=self.zone)
        return end.astimezone(moment.tzinfo)
