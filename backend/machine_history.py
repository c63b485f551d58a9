"""One machine's temperature and stock over time, for the machine detail page.

Temperature: the stored readings (heartbeats and crossing events), averaged
into at most ``MAX_POINTS`` buckets with their minimum and maximum, so a month
of minute heartbeats stays a few hundred points.

Stock: a step line per slot, rebuilt from what changes the books
(backend/stock.py): a restock at the machine or a recorded visit *sets* a
slot's count, a successful vend takes one away, a vend that found the slot
empty sets it to 0. Forward from the first set-point in the range; a slot
with none in the range is walked back from today's books. Stock reports that
correct the books are not replayed: they are the discrepancies listed beside.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, col, select

from backend.models import DispenseEvent, MachineEvent, RestockVisit, Slot, TemperatureReading

MAX_POINTS = 500
"""Most temperature points returned; more readings are averaged into buckets."""


@dataclass(frozen=True)
class TemperaturePoint:
    """Mean, lowest and highest reading in one bucket starting at ``at``."""

    at: dt.datetime
    celsius: float
    low: float
    high: float
    readings: int


def bucket_readings(readings: Sequence[tuple[dt.datetime, float]], lo: dt.datetime,
                    hi: dt.datetime, max_points: int = MAX_POINTS) -> list[TemperaturePoint]:
    """Average time-ordered readings into at most ``max_points`` equal buckets over [lo, hi)."""
    if len(readings) <= max_points:
        return [TemperaturePoint(at, c, c, c, 1) for at, c in readings]
    width = max((hi - lo) / max_points, dt.timedelta(seconds=1))
    groups: dict[int, list[float]] = defaultdict(list)
    for at, celsius in readings:
        groups[int((at - lo) / width)].append(celsius)
    return [TemperaturePoint(lo + width * n, round(sum(v) / len(v), 2), min(v), max(v), len(v))
            for n, v in sorted(groups.items())]


def temperature_history(session: Session, machine_id: str, *, lo: dt.datetime,
                        hi: dt.datetime) -> list[TemperaturePoint]:
    """Return the machine's readings in [lo, hi), bucketed when there are many."""
    rows = session.exec(
        select(TemperatureReading.at, TemperatureReading.celsius)
        .where(col(TemperatureReading.machine_id) == machine_id,
               col(TemperatureReading.at) >= lo, col(TemperatureReading.at) < hi)
        .order_by(col(TemperatureReading.at))
    ).all()
    return bucket_readings([(at, float(c)) for at, c in rows], lo, hi)


@dataclass(frozen=True, order=True)
class Change:
    """Something that changed one slot's books at ``at``: set it to ``count``, or vend one."""

    at: dt.datetime
    slot: int
    kind: Literal["set", "vend"]
    count: int = 0


@dataclass(frozen=True)
class StockPoint:
    """A slot's count from ``at`` on."""

    at: dt.datetime
    slot: int
    count: int


def stock_steps(changes: Iterable[Change], books: dict[int, int], lo: dt.datetime,
                hi: dt.datetime) -> list[StockPoint]:
    """Rebuild each slot's count over [lo, hi) from its changes and today's books (pure)."""
    by_slot: dict[int, list[Change]] = defaultdict(list)
    for change in sorted(changes):
        by_slot[change.slot].append(change)
    points: list[StockPoint] = []
    for slot in sorted(set(books) | set(by_slot)):
        mine = by_slot.get(slot, [])
        if any(c.kind == "set" for c in mine):
            known: int | None = None
            for change in mine:
                if change.kind == "set":
                    known = change.count
                elif known is None:
                    continue  # before the first set-point the count is not known
                else:
                    known = max(0, known - 1)
                points.append(StockPoint(change.at, slot, known))
        else:
            # Vends only: today's books plus every vend since each moment.
            count = books.get(slot, 0) + len(mine)
            points.append(StockPoint(lo, slot, count))
            for change in mine:
                count -= 1
                points.append(StockPoint(change.at, slot, count))
        if points and points[-1].slot == slot:
            points.append(StockPoint(hi, slot, points[-1].count))
    return points


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def stock_history(session: Session, machine_id: str, *, lo: dt.datetime,
                  hi: dt.datetime) -> list[StockPoint]:
    """Return each slot's count over [lo, hi) as steps (``stock_steps``)."""
    changes: list[Change] = []
    vends = session.exec(
        select(DispenseEvent.device_time, DispenseEvent.slot, DispenseEvent.result)
        .where(col(DispenseEvent.machine_id) == machine_id,
               col(DispenseEvent.device_time) >= lo,
               col(DispenseEvent.device_time) < hi,
               col(DispenseEvent.result).in_(["ok", "empty"]))
    ).all()
    for at, slot, result in vends:
        changes.append(Change(_aware(at), slot, "vend") if result == "ok"
                       else Change(_aware(at), slot, "set", 0))
    restocks = session.exec(
        select(MachineEvent.device_time, MachineEvent.slot, MachineEvent.data)
        .where(col(MachineEvent.machine_id) == machine_id, col(MachineEvent.kind) == "restock",
               col(MachineEvent.device_time) >= lo, col(MachineEvent.device_time) < hi)
    ).all()
    for at, restocked, data in restocks:
        set_to = (data or {}).get("count")
        if restocked is not None and isinstance(set_to, int):
            changes.append(Change(_aware(at), restocked, "set", set_to))
    visits = session.exec(
        select(RestockVisit.visited_at, RestockVisit.counts)
        .where(col(RestockVisit.machine_id) == machine_id,
               col(RestockVisit.visited_at) >= lo, col(RestockVisit.visited_at) < hi)
    ).all()
    for at, counts in visits:
        for slot, count in (counts or {}).items():
            if str(slot).isdigit() and isinstance(count, int):
                changes.append(Change(_aware(at), int(slot), "set", count))
    books = {s.slot: s.count for s in session.exec(
        select(Slot).where(col(Slot.machine_id) == machine_id)).all()}
    return stock_steps(changes, books, lo, hi)
