"""The planner's request inputs as a person types them: depot and shift start, checked."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from backend.restock.model import Point

DEPOT_PATTERN = r"^\s*-?\d{1,3}(\.\d{1,12})?\s*,\s*-?\d{1,3}(\.\d{1,12})?\s*$"
# Shifts are planned within this century: far-off dates are typing mistakes.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def parse_depot(text: str) -> Point:
    """Parse ``LAT,LON`` in degrees; raise ValueError naming what is out of range."""
    if not re.fullmatch(DEPOT_PATTERN, text):
        raise ValueError(f"depot {text!r} is not LAT,LON in decimal degrees")
    lat, lon = (float(part) for part in text.split(","))
    if not -90 <= lat <= 90:
        raise ValueError(f"depot latitude {lat} is outside -90..90")
    if not -180 <= lon <= 180:
        raise ValueError(f"depot longitude {lon} is outside -180..180")
    return Point(lat, lon)


def shift_start_of(value: datetime | None) -> datetime:
    """Return the shift's start in UTC (now when not given; no offset means UTC)."""
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        start = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # an offset that moves year 1 or 9999 off the calendar
        start = LATEST
    if not EARLIEST <= start < LATEST:
        raise ValueError(f"shift_start {value.isoformat()} is not between 2000 and 2100")
    return start
