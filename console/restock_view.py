"""Pure restock planning for the console: what to load at each machine and in the van."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from console.api_models import Health, MachinePublic, SlotPublic
from console.fleet_view import HEALTH_LABELS, sort_by_urgency


def target(slot: SlotPublic) -> int:
    """Return how many items a visit should leave in ``slot``: par, else capacity."""
    if slot.par is not None:
        return slot.par
    return slot.capacity if slot.capacity is not None else slot.count


def to_load(slot: SlotPublic) -> int:
    """Return how many items to bring for ``slot`` (never negative)."""
    return max(0, target(slot) - slot.count)


def needs_visit(machine: MachinePublic) -> bool:
    """Return whether a machine is worth a restock visit (something to load, and reachable)."""
    if machine.health is Health.OFFLINE:
        return False
    return any(to_load(slot) > 0 for slot in machine.slots)


def pick_rows(machines: Iterable[MachinePublic]) -> list[dict[str, Any]]:
    """Return one row per slot to load, most urgent machine first."""
    rows: list[dict[str, Any]] = []
    for machine in sort_by_urgency(m for m in machines if needs_visit(m)):
        for slot in sorted(machine.slots, key=lambda s: s.slot):
            load = to_load(slot)
            if load:
                rows.append(
                    {
                        "machine": machine.id,
                        "name": machine.name,
                        "state": HEALTH_LABELS[machine.health],
                        "slot": slot.slot,
                        "product": slot.product or "",
                        "in machine": slot.count,
                        "target": target(slot),
                        "load": load,
                    }
                )
    return rows


def van_totals(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the van's load: items per product across the pick list, largest first."""
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        totals[row["product"] or "(unknown product)"] += int(row["load"])
    return [
        {"product": product, "load": load}
        for product, load in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    ]


def visit_defaults(machine: MachinePublic) -> dict[int, int]:
    """Return the counts a visit is expected to leave, slot -> count (the form's defaults)."""
    return {slot.slot: max(slot.count, target(slot)) for slot in machine.slots}
