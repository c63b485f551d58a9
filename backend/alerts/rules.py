"""Which alerts a slot or machine state calls for: pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.models.alerts import AlertType, Severity
from backend.stock import is_empty, is_low


@dataclass(frozen=True)
class AlertSpec:
    """An alert that should be open for a subject."""

    type: AlertType
    severity: Severity
    subject: str
    machine_id: str | None
    message: str


def slot_subject(machine_id: str, slot: int) -> str:
    """Return the alert subject naming one slot."""
    return f"{machine_id}/slot/{slot}"


def slot_alert_types(count: int, low_threshold: int) -> frozenset[AlertType]:
    """Return the stock alerts a slot's count calls for."""
    wanted: set[AlertType] = set()
    if is_low(count, low_threshold):
        wanted.add(AlertType.LOW_STOCK)
    if is_empty(count):
        wanted.add(AlertType.EMPTY_SLOT)
    return frozenset(wanted)


def slot_alert_spec(
    kind: AlertType, machine_id: str, slot: int, product: str | None, count: int, threshold: int
) -> AlertSpec:
    """Describe a stock alert for a slot."""
    what = product or "unknown product"
    if kind is AlertType.EMPTY_SLOT:
        return AlertSpec(
            kind,
            Severity.CRITICAL,
            slot_subject(machine_id, slot),
            machine_id,
            f"{machine_id} slot {slot} ({what}) is empty",
        )
    return AlertSpec(
        kind,
        Severity.WARNING,
        slot_subject(machine_id, slot),
        machine_id,
        f"{machine_id} slot {slot} ({what}) is low: {count} left (threshold {threshold})",
    )


def vend_failure_spec(machine_id: str, slot: int, result: str) -> AlertSpec:
    """Describe a failed vend (jam, nothing dropped) of a slot."""
    return AlertSpec(
        AlertType.VEND_FAILURE,
        Severity.WARNING,
        slot_subject(machine_id, slot),
        machine_id,
        f"{machine_id} slot {slot}: vend failed ({result})",
    )


def machine_alert_spec(kind: AlertType, machine_id: str, message: str) -> AlertSpec:
    """Describe an alert about a whole machine (offline, door, temperature, gap)."""
    severity = Severity.CRITICAL if kind is AlertType.TEMPERATURE else Severity.WARNING
    return AlertSpec(kind, severity, machine_id, machine_id, message)


def dead_letter_flood_spec(machine_id: str) -> AlertSpec:
    """Describe a machine whose malformed messages are over its dead-letter quota."""
    return AlertSpec(
        AlertType.DEAD_LETTER_FLOOD,
        Severity.WARNING,
        machine_id,
        machine_id,
        f"{machine_id}: sends malformed messages faster than its dead-letter quota; "
        "the rest are counted, not stored",
    )


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
    *, status: str, slot_counts: list[tuple[int, int]], open_alert_types: set[str]
) -> str:
    """Summarise a machine for the map: offline, alarm, empty, low_stock or ok.

    ``slot_counts`` holds (count, low_threshold) per slot.
    """
    if status == "offline":
        return "offline"
    if any(t in open_alert_types for t in ALARM_TYPES):
        return "alarm"
    if any(is_empty(count) for count, _ in slot_counts):
        return "empty"
    if any(is_low(count, threshold) for count, threshold in slot_counts):
        return "low_stock"
    return "ok"


def is_silent(last_seen: datetime | None, *, now: datetime, timeout: timedelta) -> bool:
    """Return whether a machine was not heard from within ``timeout`` before ``now`` (or never).

    The offline watchdog (backend/ingest/maintenance.py) applies the same
    comparison in SQL to machines it has heard from at least once.
    """
    return last_seen is None or last_seen < now - timeout
