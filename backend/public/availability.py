"""Whether naloxone can be had at a machine now: a pure rule over what the books say."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from backend.machine_state import MachineStatus, is_silent
from backend.stock import is_empty


class Availability(StrEnum):
    """What the public feed says about naloxone at one machine."""

    AVAILABLE = "available"
    OUT = "out"
    UNKNOWN = "unknown"


def naloxone_availability(
    *,
    status: str,
    last_seen: datetime | None,
    now: datetime,
    silent_after: timedelta,
    naloxone_counts: Iterable[int],
) -> Availability:
    """Say whether naloxone can be had: ``naloxone_counts`` are the machine's naloxone slots.

    Only a machine that is online and was heard from within ``silent_after``
    (the offline watchdog's timeout) gets a yes or a no; the books of one that
    is offline, never reported, or has gone quiet since the watchdog last ran
    may be wrong, so it is ``unknown``.
    """
    if status != MachineStatus.ONLINE or is_silent(last_seen, now=now, timeout=silent_after):
        return Availability.UNKNOWN
    if any(not is_empty(count) for count in naloxone_counts):
        return Availability.AVAILABLE
    return Availability.OUT
