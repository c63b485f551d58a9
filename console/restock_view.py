"""Pure rendering decisions of the Restock page: labels, lines, map points and the visit body.

The plan itself comes from the backend (``GET /api/v1/restock/plan``); this
module only turns it into what a worker reads on a phone — one short
``label: value`` line per fact, never a wide table — and turns the visit form
back into the body of ``POST /api/v1/visits``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from console.api_models import MachinePublic, PlannedStop, RestockPlan, VanRoute

URGENCY_LABELS: Final = {"critical": "Critical", "urgent": "Urgent", "routine": "Routine"}
# Okabe-Ito colours (safe for the common colour blindnesses); the number and the
# label on each stop say the same thing in text.
URGENCY_COLOURS: Final[dict[str, list[int]]] = {
    "critical": [213, 94, 0, 230],
    "urgent": [230, 159, 0, 230],
    "routine": [0, 114, 178, 230],
}
DONE_COLOUR: Final = [150, 150, 150, 200]
DEPOT_COLOUR: Final = [0, 0, 0, 230]
REMOVAL_REASONS: Final = ("expired", "heat_exposed", "damaged")
REMOVAL_LABELS: Final = {"expired": "Expired", "heat_exposed": "Heat-exposed",
                         "damaged": "Damaged"}
# What the API accepts as a lot number (backend/api/lot_schemas.py): checked here so
# that a scanner's stray character is pointed out on the phone, not as a 422.
LOT_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ./_-]{0,39}")
FALLBACK_DEPOT: Final = "0,0"


# -- shift inputs -------------------------------------------------------------------------

def default_depot(machines: Iterable[MachinePublic], configured: str | None) -> str:
    """Return the depot to plan from: the configured one, else the middle of the fleet."""
    if configured:
        return configured.replace(" ", "")
    placed = [(m.lat, m.lon) for m in machines if m.lat is not None and m.lon is not None]
    if not placed:
        return FALLBACK_DEPOT
    lat = sum(p[0] for p in placed) / len(placed)
    lon = sum(p[1] for p in placed) / len(placed)
    return f"{lat:.4f},{lon:.4f}"


# -- what the worker reads ------------------------------------------------------------------

def clock(moment: datetime, zone: ZoneInfo) -> str:
    """Return ``HH:MM`` of ``moment`` in the worker's time zone."""
    return moment.astimezone(zone).strftime("%H:%M")


def van_label(van: VanRoute, zone: ZoneInfo) -> str:
    """Return one line that tells vans apart: stops, distance, items, when it is back."""
    stops = len(van.stops)
    return (f"Van {van.van} · {stops} stop{'s' if stops != 1 else ''} · "
            f"{van.distance_km:.1f} km · {van.items} items · back {clock(van.return_time, zone)}")


def stop_title(stop: PlannedStop, zone: ZoneInfo, *, done: bool) -> str:
    """Return a stop's expander title: number, name, arrival, urgency, and "Done" when done."""
    mark = ":material/check_circle: Done · " if done else ""
    urgency = URGENCY_LABELS.get(stop.urgency, stop.urgency)
    return f"{mark}{stop.order} · {stop.name} · {clock(stop.arrival, zone)} · {urgency}"


def stop_lines(stop: PlannedStop, zone: ZoneInfo) -> list[str]:
    """Return a stop's facts as short Markdown ``label: value`` lines, one slot per line."""
    lines = [
        f"**Arrive:** {clock(stop.arrival, zone)} · **leave:** {clock(stop.departure, zone)}",
        f"**Machine:** {stop.machine_id}",
    ]
    if stop.reasons:
        lines.append(f"**Why:** {'; '.join(stop.reasons)}")
    for line in sorted(stop.load, key=lambda item: item.slot):
        lines.append(
            f"**Slot {line.slot}:** {line.product} — load **{line.quantity}** "
            f"(has {line.count}, par {line.par})"
        )
        if line.replace:
            lots = ", ".join(line.replace_lots) or "no lot recorded"
            lines.append(f"**Slot {line.slot} take out:** {line.replace} ({lots})")
    lines.append(f"**Items from the van:** {stop.items}")
    return lines


def load_lines(van: VanRoute) -> list[str]:
    """Return the van's load list, one ``product: quantity`` line each, largest first."""
    ordered = sorted(van.load_list, key=lambda p: (-p.quantity, p.product))
    return [f"**{p.product}:** {p.quantity}" for p in ordered]


def left_out_lines(plan: RestockPlan) -> list[str]:
    """Return the machines that needed a visit and are on no route, with why."""
    return [
        f"**{item.machine_id}** ({URGENCY_LABELS.get(item.urgency, item.urgency)}, "
        f"{item.items} items): {item.reason}"
        for item in plan.left_out
    ]


def next_stop(van: VanRoute, done: set[str]) -> PlannedStop | None:
    """Return the first stop in order that is not ticked off."""
    return next((s for s in van.stops if s.machine_id not in done), None)


def progress(van: VanRoute, done: set[str]) -> str:
    """Return how far the van is through its round, e.g. ``2 of 5 stops done``."""
    count = sum(1 for s in van.stops if s.machine_id in done)
    return f"{count} of {len(van.stops)} stops done"


# -- the map ------------------------------------------------------------------------------

def route_path(plan: RestockPlan, van: VanRoute) -> list[list[float]]:
    """Return the van's path as ``[lon, lat]`` pairs: depot, each stop in order, depot."""
    depot = [plan.depot.lon, plan.depot.lat]
    return [depot, *([s.lon, s.lat] for s in van.stops), depot]


def stop_points(van: VanRoute, done: set[str], zone: ZoneInfo) -> list[dict[str, Any]]:
    """Return one map point per stop: its number as text, its colour, a tooltip."""
    return [
        {
            "lon": s.lon,
            "lat": s.lat,
            "number": str(s.order),
            "name": s.name,
            "arrival": clock(s.arrival, zone),
            "urgency": URGENCY_LABELS.get(s.urgency, s.urgency),
            "colour": DONE_COLOUR if s.machine_id in done else URGENCY_COLOURS.get(
                s.urgency, URGENCY_COLOURS["routine"]),
        }
        for s in van.stops
    ]


# -- the visit form -----------------------------------------------------------------------

@dataclass(frozen=True)
class LotEntry:
    """One lot line as typed (or scanned) on the form."""

    lot_number: str = ""
    product: str = ""
    expiry: date | None = None
    quantity: int = 0


@dataclass(frozen=True)
class RemovalEntry:
    """Stock taken out of a slot, and why."""

    quantity: int = 0
    reason: str = "expired"
    lot_number: str = ""


@dataclass(frozen=True)
class SlotEntry:
    """What the form says about one slot; ``None`` counts were left blank."""

    slot: int
    found: int | None = None
    removed: RemovalEntry = field(default_factory=RemovalEntry)
    loaded: tuple[LotEntry, ...] = ()
    count_after: int | None = None


@dataclass(frozen=True)
class VisitDraft:
    """The body to post, or the problems to fix first (never both)."""

    body: dict[str, Any] | None
    problems: list[str]


def clean_lot_number(text: str) -> str:
    """Return a lot number as typed or scanned, without the scanner's line ending or padding."""
    return text.strip()


def _lot(slot: int, entry: LotEntry, today: date, problems: list[str]) -> dict[str, Any] | None:
    number = clean_lot_number(entry.lot_number)
    if not number and entry.quantity == 0:
        return None  # an unused line
    where = f"Slot {slot}"
    if not number:
        problems.append(f"{where}: {entry.quantity} loaded without a lot number.")
        return None
    if not LOT_NUMBER.fullmatch(number):
        problems.append(f"{where}: lot number {number!r} has characters a lot number cannot "
                        "have (letters, digits, space . / _ - only; at most 40).")
        return None
    if entry.quantity <= 0:
        problems.append(f"{where}: lot {number} needs how many were loaded.")
        return None
    if entry.expiry is None:
        problems.append(f"{where}: lot {number} needs its expiry date.")
        return None
    if entry.expiry < today:
        problems.append(f"{where}: lot {number} expired on {entry.expiry.isoformat()}; "
                        "do not load it.")
        return None
    if not entry.product:
        problems.append(f"{where}: lot {number} needs its product.")
        return None
    return {"lot_number": number, "product": entry.product,
            "expiry": entry.expiry.isoformat(), "quantity": entry.quantity}


def _removal(slot: int, entry: RemovalEntry, problems: list[str]) -> dict[str, Any] | None:
    if entry.quantity <= 0:
        return None
    if entry.reason not in REMOVAL_REASONS:
        problems.append(f"Slot {slot}: say why stock was taken out.")
        return None
    out: dict[str, Any] = {"reason": entry.reason, "quantity": entry.quantity}
    number = clean_lot_number(entry.lot_number)
    if number:
        if not LOT_NUMBER.fullmatch(number):
            problems.append(f"Slot {slot}: lot number {number!r} of the stock taken out "
                            "is not a lot number.")
            return None
        out["lot_number"] = number
    return out


def visit_body(machine_id: str, entries: Sequence[SlotEntry], today: date) -> VisitDraft:
    """Return the ``POST /api/v1/visits`` body for what the form holds, or what to fix.

    A slot with nothing entered is left out; a visit with nothing at all is refused
    here rather than recorded empty.
    """
    problems: list[str] = []
    slots: list[dict[str, Any]] = []
    for entry in sorted(entries, key=lambda e: e.slot):
        loaded = [lot for lot in (_lot(entry.slot, e, today, problems) for e in entry.loaded)
                  if lot is not None]
        removal = _removal(entry.slot, entry.removed, problems)
        item: dict[str, Any] = {"slot": entry.slot}
        if entry.found is not None:
            item["found"] = entry.found
        if removal is not None:
            item["removed"] = [removal]
        if loaded:
            item["loaded"] = loaded
        if entry.count_after is not None:
            item["count_after"] = entry.count_after
        if len(item) > 1:
            slots.append(item)
    if problems:
        return VisitDraft(None, problems)
    if not slots:
        return VisitDraft(None, ["Nothing to record yet: enter a count or a lot for a slot."])
    return VisitDraft({"machine_id": machine_id, "slots": slots}, [])


def visit_summary(counts: dict[str, int], discrepancies: Sequence[dict[str, int]],
                  resolved_alerts: int) -> list[str]:
    """Return what the API says the visit did, as short lines."""
    lines = [f"**Slot {slot} now:** {count}" for slot, count in
             sorted(counts.items(), key=lambda kv: int(kv[0]))]
    lines.extend(f"**Slot {d['slot']} count differed:** books {d['expected']}, "
                 f"found {d['observed']}" for d in discrepancies)
    if resolved_alerts:
        lines.append(f"**Alerts closed:** {resolved_alerts}")
    return lines
