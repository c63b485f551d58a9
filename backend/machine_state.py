"""A machine's connection status, what set it, and its one-word health: pure rules.

Ingest sets the status (the retained status topic, telemetry, the offline
watchdog); the API, the console-facing snapshot and the public feed read it.
All of them decide here, so the stored strings mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from backend.models.alerts import AlertType
from backend.stock import is_empty, is_low


class MachineStatus(StrEnum):
    """Whether a machine is connected, as far as the backend knows."""

    ONLINE = "online"
    OFFLINE = "offline"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, stored: str | None) -> MachineStatus:
        """Read a stored status; anything but online or offline is unknown."""
        if stored == cls.ONLINE:
            return cls.ONLINE
        if stored == cls.OFFLINE:
            return cls.OFFLINE
        return cls.UNKNOWN


class StatusSource(StrEnum):
    """What set a machine's status; only a timeout is undone by telemetry."""

    STATUS = "status"  # the retained status topic (birth message or last will)
    TIMEOUT = "timeout"  # the missed-heartbeat watchdog
    TELEMETRY = "telemetry"  # a heartbeat from a machine we thought absent


class Health(StrEnum):
    """A machine's state on the map, worst first."""

    OFFLINE = "offline"
    ALARM = "alarm"
    EMPTY = "empty"
    LOW_STOCK = "low_stock"
    OK = "ok"


@dataclass(frozen=True)
class StatusChange:
    """A status to store, with what set it."""

    status: MachineStatus
    source: StatusSource


def from_status_message(*, online: bool) -> StatusChange:
    """Return the status that a message on the retained status topic sets."""
    return StatusChange(
        MachineStatus.ONLINE if online else MachineStatus.OFFLINE, StatusSource.STATUS
    )


def revived_by_telemetry(status: str, source: str | None) -> StatusChange | None:
    """Return the change a heartbeat makes, or None when it leaves the status alone.

    A heartbeat brings back a machine that the watchdog timed out or that never
    said anything; an offline set by the machine's own last will stands until
    the machine says it is online again.
    """
    if status == MachineStatus.UNKNOWN or source == StatusSource.TIMEOUT:
        return StatusChange(MachineStatus.ONLINE, StatusSource.TELEMETRY)
    return None


TIMED_OUT = StatusChange(MachineStatus.OFFLINE, StatusSource.TIMEOUT)


def is_silent(last_seen: datetime | None, *, now: datetime, timeout: timedelta) -> bool:
    """Return whether a machine was not heard from within ``timeout`` before ``now`` (or never).

    The offline watchdog (backend/ingest/maintenance.py) applies the same
    comparison in SQL to machines it has heard from at least once.
    """
    return last_seen is None or last_seen < now - timeout


# Alert types that make a machine's health "alarm" rather than a stock state.
ALARM_TYPES = frozenset(
    {
        AlertType.TEMPERATURE,
        AlertType.DOOR_OPEN,
        AlertType.VEND_FAILURE,
        AlertType.DELIVERY_GAP,
    }
)


def machine_health(
    *, status: str, slot_levels: Iterable[tuple[int, int]], open_alert_types: set[str]
) -> Health:
    """Summarise a machine for the map: offline, alarm, empty, low_stock or ok.

    ``slot_levels`` holds (count, effective low-stock threshold) per slot.
    """
    if status == MachineStatus.OFFLINE:
        return Health.OFFLINE
    if any(t in open_alert_types for t in ALARM_TYPES):
        return Health.ALARM
    levels = list(slot_levels)
    if any(is_empty(count) for count, _ in levels):
        return Health.EMPTY
    if any(is_low(count, threshold) for count, threshold in levels):
        return Health.LOW_STOCK
    return Health.OK
