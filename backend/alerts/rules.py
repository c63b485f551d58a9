"""Which alerts a slot or machine state calls for: pure functions."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class SlotAlerts:
    """The stock alerts to open and to resolve for one slot, with the details to store."""

    subject: str
    open: tuple[AlertSpec, ...]
    resolve: tuple[AlertType, ...]
    details: dict[str, int]


def settle_slot_alerts(
    *, machine_id: str, slot: int, product: str | None, count: int, threshold: int
) -> SlotAlerts:
    """Decide which of a slot's low-stock and empty alerts should be open, given its count."""
    wanted = slot_alert_types(count, threshold)
    kinds = (AlertType.LOW_STOCK, AlertType.EMPTY_SLOT)
    return SlotAlerts(
        subject=slot_subject(machine_id, slot),
        open=tuple(
            slot_alert_spec(kind, machine_id, slot, product, count, threshold)
            for kind in kinds
            if kind in wanted
        ),
        resolve=tuple(kind for kind in kinds if kind not in wanted),
        details={"count": count, "threshold": threshold},
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
