"""Which machines need a visit, how badly, and what to load per slot: pure rules.

A slot is loaded to par (its own, else the fleet default, else its capacity,
never above capacity). Doses to replace (expired or heat-exposed lots, from
the lots module when it lands) are loaded on top, since they come out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from backend.models.alerts import AlertType
from backend.restock.model import Point, SlotLoad, Stop, Urgency
from backend.stock import is_empty, is_low

# Alert types that ask for a visit.
VISIT_ALERTS = frozenset(
    {
        AlertType.EMPTY_SLOT.value,
        AlertType.LOW_STOCK.value,
        AlertType.TEMPERATURE.value,
        AlertType.PREDICTED_STOCKOUT.value,
        AlertType.EXPIRING_STOCK.value,
        AlertType.HEAT_EXPOSURE.value,
    }
)


@dataclass(frozen=True)
class SlotState:
    """One slot as the books have it, with its thresholds."""

    slot: int
    product: str | None
    is_naloxone: bool
    count: int
    capacity: int
    par: int | None
    low_threshold: int
    # Doses in this slot to replace, and their lot numbers (lots module).
    replace: int = 0
    replace_lots: tuple[str, ...] = ()
    # True when the forecast says this slot runs out before the next shift.
    stockout_before_next_shift: bool = False
    # When the forecast says the slot may run out during the shift (naloxone).
    due: datetime | None = None


@dataclass(frozen=True)
class MachineState:
    """One machine's place, slots and open alerts: everything a stop is made from."""

    machine_id: str
    name: str
    at: Point
    slots: tuple[SlotState, ...]
    open_alerts: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ServiceTime:
    """Minutes at a machine: a fixed part (park, open, count) and a part per item loaded."""

    base_minutes: float
    per_item_minutes: float

    def seconds(self, items: int) -> int:
        """Return the service time of a stop loading ``items``."""
        return round((self.base_minutes + self.per_item_minutes * items) * 60)


def target_par(slot: SlotState, default_par: int | None) -> int:
    """Return the count a slot is filled to: its par, the default, or its capacity."""
    par = slot.par if slot.par is not None else default_par
    if par is None:
        return slot.capacity
    return min(par, slot.capacity) if slot.capacity > 0 else par


def slot_load(slot: SlotState, default_par: int | None) -> SlotLoad | None:
    """Return what one slot needs, or None when it needs nothing or holds no known product."""
    if slot.product is None:
        return None
    par = target_par(slot, default_par)
    # Doses taken out free room; never bring more than fits after removing them.
    replace = min(slot.replace, slot.count)
    to_par = max(0, par - slot.count)
    if to_par == 0 and replace == 0:
        return None
    return SlotLoad(slot.slot, slot.product, slot.is_naloxone, slot.count, par, to_par,
                    replace, slot.replace_lots if replace else ())


def urgency_of(machine: MachineState) -> tuple[Urgency, tuple[str, ...]] | None:
    """Return how pressing a visit is and why, or None when the machine needs none."""
    reasons: list[str] = []
    critical = False
    for s in machine.slots:
        if s.product is None:
            continue
        if s.is_naloxone and is_empty(s.count):
            critical = True
            reasons.append(f"slot {s.slot}: naloxone is out")
        elif s.is_naloxone and s.stockout_before_next_shift:
            critical = True
            reasons.append(f"slot {s.slot}: naloxone forecast to run out before the next shift")
        elif is_empty(s.count):
            reasons.append(f"slot {s.slot}: {s.product} is out")
        elif is_low(s.count, s.low_threshold):
            reasons.append(f"slot {s.slot}: {s.product} is low ({s.count} left)")
        if s.replace:
            reasons.append(f"slot {s.slot}: {s.replace} dose(s) to replace")
    alerts = sorted(machine.open_alerts & VISIT_ALERTS)
    reasons.extend(f"open alert: {a}" for a in alerts)
    if AlertType.PREDICTED_STOCKOUT.value in machine.open_alerts:
        critical = True
    if critical:
        return Urgency.CRITICAL, tuple(reasons)
    if reasons:
        return Urgency.URGENT, tuple(reasons)
    return None


def stop_for(
    machine: MachineState, *, default_par: int | None, service: ServiceTime
) -> Stop | None:
    """Return the stop a machine calls for, or None when it needs nothing."""
    loads = tuple(
        load for load in (slot_load(s, default_par) for s in machine.slots) if load is not None
    )
    pressing = urgency_of(machine)
    if pressing is None and not loads:
        return None
    urgency, reasons = pressing or (Urgency.ROUTINE, ("below par",))
    items = sum(load.quantity for load in loads)
    dues = [s.due for s in machine.slots if s.is_naloxone and s.due is not None]
    return Stop(machine.machine_id, machine.name, machine.at, urgency, reasons, loads,
                service.seconds(items), due=min(dues) if dues else None)


def stops_for(
    machines: Iterable[MachineState], *, default_par: int | None, service: ServiceTime
) -> list[Stop]:
    """Return the stops of every machine that needs a visit, in the order given."""
    found = (stop_for(m, default_par=default_par, service=service) for m in machines)
    return [stop for stop in found if stop is not None]
