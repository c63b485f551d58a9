"""When a ``predicted_stockout`` alert opens, stays and resolves: pure, with hysteresis."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backend.alerts.rules import AlertSpec, slot_subject
from backend.models.alerts import AlertType, Severity


class Decision(StrEnum):
    """What the tick does with one slot's alert."""

    OPEN = "open"
    KEEP = "keep"
    RESOLVE = "resolve"
    NOTHING = "nothing"


class Reason(StrEnum):
    """Why an alert resolves."""

    RECOVERED = "recovered"
    VISIT = "visit"
    RAN_OUT = "ran_out"


@dataclass(frozen=True)
class Thresholds:
    """Open at ``open_at`` or above; once open, resolve only below ``resolve_below``."""

    open_at: float = 0.5
    resolve_below: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.resolve_below <= self.open_at <= 1:
            raise ValueError("need 0 < resolve_below <= open_at <= 1")


def decide(
    *, active: bool, probability: float, count: int, visited_since_open: bool,
    thresholds: Thresholds,
) -> tuple[Decision, Reason | None]:
    """Decide one slot's alert from the chance it runs out before the deadline.

    The gap between the two thresholds keeps an alert from flapping as the
    chance wobbles around one number. A visit since the alert opened resolves
    it as soon as the chance is under the opening threshold (the visit loaded
    enough); an empty slot hands over to the ``empty_slot`` alert.
    """
    if count == 0:
        return (Decision.RESOLVE, Reason.RAN_OUT) if active else (Decision.NOTHING, None)
    if not active:
        return (Decision.OPEN, None) if probability >= thresholds.open_at else (
            Decision.NOTHING, None)
    if probability < thresholds.resolve_below:
        return Decision.RESOLVE, Reason.RECOVERED
    if visited_since_open and probability < thresholds.open_at:
        return Decision.RESOLVE, Reason.VISIT
    return Decision.KEEP, None


def predicted_stockout_spec(
    machine_id: str, slot: int, product: str | None, probability: float, deadline: str
) -> AlertSpec:
    """Describe a slot likely to run out before ``deadline`` (an ISO time)."""
    return AlertSpec(
        AlertType.PREDICTED_STOCKOUT,
        Severity.WARNING,
        slot_subject(machine_id, slot),
        machine_id,
        f"{machine_id} slot {slot} ({product or 'unknown product'}): "
        f"{probability:.0%} chance it runs out before {deadline}",
    )
