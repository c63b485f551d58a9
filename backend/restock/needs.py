"""Which machines need a visit, how badly, and what to load per slot: pure rules.

A slot is loaded to par (its own, else the fleet default, else its capacity,
never above capacity). Doses to replace (expired or heat-exposed lots, from
the lots module) are loaded on top, since they come out.

Given the shift's ``Horizon``, a stop is pressing only for what cannot wait
for the next shift (see ``urgency_of``); the rest is routine, served on the
way when the routing finds it worth it. A lot expiring within 60 days (the
``expiring_stock`` alert) is swapped at whichever visit comes first, and
fetched for only within ``SWAP_WINDOW`` of its date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from backend.models.alerts import AlertType
from backend.restock.model import Point, SlotLoad, Stop, Urgency
from backend.stock import is_empty, is_low

SWAP_WINDOW = timedelta(days=7)
"""Lots expiring within this of the shift make their stop urgent: a week of shifts to fit
the stop in before a dose could be dispensed past its date."""

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
    # When those doses must be out: now for expired or heat-exposed, else the earliest expiry
    # (None: unknown, treated as now).
    replace_by: datetime | None = None


@dataclass(frozen=True)
class MachineState:
    """One machine's place, slots and open alerts: everything a stop is made from."""

    machine_id: str
    name: str
    at: Point
    slots: tuple[SlotState, ...]
    open_alerts: frozenset[str] = field(default_factory=frozenset)
    # An issued plan's stop here whose time passed with no visit: overdue.
    missed_visit: datetime | None = None


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


@dataclass(frozen=True)
class Horizon:
    """When the van could next come (the next shift) and how far ahead lots are swapped.

    Given to the rules, it makes a stop pressing only for what cannot wait for the
    next shift; without it every low slot and every dose to replace is pressing.
    """

    next_shift: datetime
    swap_before: datetime

    @classmethod
    def after(cls, shift_start: datetime, next_shift: datetime) -> Horizon:
        """Return the horizon of a shift starting at ``shift_start``."""
        return cls(next_shift=next_shift, swap_before=shift_start + SWAP_WINDOW)


def must_swap(slot: SlotState, horizon: Horizon | None) -> bool:
    """Say whether naloxone doses in ``slot`` must be out before the next shift."""
    by = slot.replace_by
    return bool(horizon and slot.is_naloxone and slot.replace
                and (by is None or by < horizon.next_shift))


def urgency_of(
    machine: MachineState, *, horizon: Horizon | None = None
) -> tuple[Urgency, tuple[str, ...]] | None:
    """Return how pressing a visit is and why, or None when the machine needs none.

    With a ``horizon``: a low slot (or an open ``low_stock`` alert) is routine, since
    the forecast already makes naloxone critical when it would run out before the
    next shift; doses to replace are urgent only when they must be out within
    ``SWAP_WINDOW`` (an open ``expiring_stock`` alert alone is routine: the lots say
    when), and critical when naloxone must be out before the next shift (expired,
    heat-exposed, or expiring by then). Empty slots stay pressing either way, and so
    does a planned visit that was missed (``missed_visit``): it is overdue.
    """
    reasons: list[str] = []
    later: list[str] = []  # reasons for a visit that can wait for the next shift
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
            (later if horizon else reasons).append(
                f"slot {s.slot}: {s.product} is low ({s.count} left)")
        if s.replace:
            by = s.replace_by
            critical = critical or must_swap(s, horizon)
            soon = horizon is None or by is None or by <= horizon.swap_before
            (reasons if soon else later).append(f"slot {s.slot}: {s.replace} dose(s) to replace")
    waiting = {AlertType.EXPIRING_STOCK.value, AlertType.LOW_STOCK.value} if horizon else set()
    open_alerts = sorted(machine.open_alerts & VISIT_ALERTS)
    reasons.extend(f"open alert: {a}" for a in open_alerts if a not in waiting)
    later.extend(f"open alert: {a}" for a in open_alerts if a in waiting)
    if machine.missed_visit is not None:
        reasons.append(f"planned visit at {machine.missed_visit:%Y-%m-%d %H:%M} UTC was missed")
    if AlertType.PREDICTED_STOCKOUT.value in machine.open_alerts:
        critical = True
    if critical:
        return Urgency.CRITICAL, tuple(reasons + later)
    if reasons:
        return Urgency.URGENT, tuple(reasons + later)
    if later:
        return Urgency.ROUTINE, tuple(later)
    return None


def stop_for(
    machine: MachineState, *, default_par: int | None, service: ServiceTime,
    horizon: Horizon | None = None,
) -> Stop | None:
    """Return the stop a machine calls for, or None when it needs nothing."""
    loads = tuple(
        load for load in (slot_load(s, default_par) for s in machine.slots) if load is not None
    )
    if not loads and machine.missed_visit is not None:
        machine = replace(machine, missed_visit=None)  # nothing to bring: nothing overdue
    pressing = urgency_of(machine, horizon=horizon)
    if pressing is None and not loads:
        return None
    urgency, reasons = pressing or (Urgency.ROUTINE, ("below par",))
    items = sum(load.quantity for load in loads)
    dues = [s.due for s in machine.slots if s.is_naloxone and s.due is not None]
    return Stop(machine.machine_id, machine.name, machine.at, urgency, reasons, loads,
                service.seconds(items), due=min(dues) if dues else None,
                swap_now=any(must_swap(s, horizon) for s in machine.slots))


def stops_for(
    machines: Iterable[MachineState], *, default_par: int | None, service: ServiceTime,
    horizon: Horizon | None = None,
) -> list[Stop]:
    """Return the stops of every machine that needs a visit, in the order given."""
    found = (stop_for(m, default_par=default_par, service=service, horizon=horizon)
             for m in machines)
    return [stop for stop in found if stop is not None]
