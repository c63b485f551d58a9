"""What the weekly situation report says, read from the database (the HTML is html.py's).

Every count passes through the same suppression as the API gives health
officials (backend/stats/table.py): the report is meant to be forwarded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, or_, select

from backend.auth.principal import Principal, Role
from backend.hotspots.geojson import hotspot_feature
from backend.hotspots.settings import HotspotSettings
from backend.hotspots.store import naloxone_products
from backend.models import Alert, AlertType, Machine, NamedArea, Slot
from backend.report.svg import MapArea, MapCircle, MapMachine
from backend.stats.dispenses import Bucket, CountTable, Group, count_dispenses
from backend.stats.table import Published, publish

READER = Principal("weekly-report", Role.HEALTH)
"""The report counts what a health official may see: every machine, suppressed."""
YEAR_BEFORE = dt.timedelta(days=364)


@dataclass(frozen=True)
class EmptyMachine:
    """A machine with a naloxone slot empty at the end of the week, and since when."""

    machine_id: str
    name: str
    area: str | None
    since: dt.datetime
    days: float
    slots: list[int]


@dataclass(frozen=True)
class WeeklyReport:
    """The week ending ``end`` and the weeks before it, as the report shows them."""

    start: dt.date
    end: dt.date
    timezone: str
    k: int
    weeks: list[dt.date]
    by_area: Published
    last_year: Published | None
    hotspots: list[dict[str, Any]]
    empty: list[EmptyMachine]
    totals: dict[str, int | None] = field(default_factory=dict)
    """Dispenses in the 7 days, the 7 before and the same 7 a year earlier (None: under k)."""
    areas: list[MapArea] = field(default_factory=list)
    machines: list[MapMachine] = field(default_factory=list)
    circles: list[MapCircle] = field(default_factory=list)


def _rings(geometry: dict[str, Any]) -> tuple[list[tuple[float, float]], ...]:
    coords = geometry.get("coordinates") or []
    polygons = [coords] if geometry.get("type") == "Polygon" else coords
    return tuple([(float(p[0]), float(p[1])) for p in poly[0]] for poly in polygons if poly)


def _week_hotspots(session: Session, lo: dt.datetime, hi: dt.datetime, k: int,
                   replicates: int) -> list[dict[str, Any]]:
    """Return hotspot areas alive at some time in [lo, hi), suppressed with ``k``."""
    alerts = session.exec(
        select(Alert).where(
            Alert.type == AlertType.OVERDOSE_HOTSPOT.value,
            col(Alert.opened_at) < hi,
            or_(col(Alert.resolved_at).is_(None), col(Alert.resolved_at) >= lo),
        ).order_by(col(Alert.opened_at))
    ).all()
    return [f for f in (hotspot_feature(a, k=k, replicates=replicates) for a in alerts)
            if f is not None]


def _empty_machines(session: Session, products: list[str], hi: dt.datetime
                    ) -> list[EmptyMachine]:
    """Return machines with a naloxone slot's empty-slot alert open at ``hi``, longest first."""
    alerts = session.exec(
        select(Alert).where(
            Alert.type == AlertType.EMPTY_SLOT.value,
            col(Alert.machine_id).is_not(None),
            col(Alert.opened_at) < hi,
            or_(col(Alert.resolved_at).is_(None), col(Alert.resolved_at) >= hi),
        )
    ).all()
    naloxone = {(s.machine_id, s.slot) for s in session.exec(
        select(Slot).where(col(Slot.product).in_(products))).all()}
    since: dict[str, tuple[dt.datetime, list[int]]] = {}
    for alert in alerts:
        number = alert.subject.rsplit("/", 1)[-1]
        machine_id = alert.machine_id or ""
        if not number.isdigit() or (machine_id, int(number)) not in naloxone:
            continue
        opened = alert.opened_at if alert.opened_at.tzinfo else alert.opened_at.replace(
            tzinfo=dt.UTC)
        first, slots = since.get(machine_id, (opened, []))
        since[machine_id] = (min(first, opened), [*slots, int(number)])
    machines = {m.id: m for m in session.exec(
        select(Machine).where(col(Machine.id).in_(list(since)))).all()}
    out = [EmptyMachine(machine_id=mid, name=machines[mid].name if mid in machines else mid,
                        area=machines[mid].area if mid in machines else None, since=first,
                        days=round((hi - first).total_seconds() / 86400, 1),
                        slots=sorted(slots))
           for mid, (first, slots) in since.items()]
    return sorted(out, key=lambda e: (e.since, e.machine_id))


def _seven_days(session: Session, last: dt.date, zone: ZoneInfo, products: list[str], k: int
                ) -> int | None:
    """Return all dispenses of the 7 days ending ``last``, or None when from 1 to k-1."""
    table = count_dispenses(session, principal=READER, first=last - dt.timedelta(days=6),
                            last=last, bucket=Bucket.DAY, group=Group.AREA, zone=zone,
                            products=products or ["-"])
    total = sum(sum(row) for row in table.counts)
    return publish(CountTable(table.buckets[:1], ["all"], [[total]]), k).total


def weekly_report(session: Session, *, end: dt.date, weeks: int, k: int,
                  hotspots: HotspotSettings) -> WeeklyReport:
    """Gather the week ending ``end`` (inclusive) and ``weeks`` weeks of trend before it."""
    zone = ZoneInfo(hotspots.timezone)
    start = end - dt.timedelta(days=6)
    lo = dt.datetime.combine(start, dt.time.min, zone)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, zone)
    products = naloxone_products(session, hotspots)
    first = end - dt.timedelta(days=end.weekday()) - dt.timedelta(weeks=weeks - 1)
    table = count_dispenses(session, principal=READER, first=first, last=end,
                            bucket=Bucket.WEEK, group=Group.AREA, zone=zone,
                            products=products or ["-"])
    before = count_dispenses(session, principal=READER, first=first - YEAR_BEFORE,
                             last=end - YEAR_BEFORE, bucket=Bucket.WEEK, group=Group.AREA,
                             zone=zone, products=products or ["-"])
    has_history = any(any(row) for row in before.counts)
    features = _week_hotspots(session, lo, hi, k, hotspots.replicates)
    empty = _empty_machines(session, products, hi)
    covered = {a for f in features for a in f["properties"].get("areas") or []}
    areas = [MapArea(a.name, _rings(a.geometry), a.name in covered)
             for a in session.exec(select(NamedArea).order_by(col(NamedArea.name))).all()]
    out = {e.machine_id for e in empty}
    machines = [MapMachine(m.id, m.lat, m.lon, "empty" if m.id in out else "ok")
                for m in session.exec(select(Machine).where(col(Machine.active))).all()
                if m.lat is not None and m.lon is not None]
    circles = [MapCircle(f"#{f['id']}", f["geometry"]["coordinates"][1],
                         f["geometry"]["coordinates"][0],
                         float(f["properties"].get("radius_km") or 0.0)) for f in features]
    totals = {
        "these 7 days": _seven_days(session, end, zone, products, k),
        "the 7 days before": _seven_days(session, start - dt.timedelta(days=1), zone,
                                         products, k),
    }
    if has_history:
        totals["the same days a year earlier"] = _seven_days(session, end - YEAR_BEFORE, zone,
                                                             products, k)
    return WeeklyReport(
        start=start, end=end, timezone=zone.key, k=k, totals=totals,
        weeks=[b.date() for b in table.buckets], by_area=publish(table, k),
        last_year=publish(before, k) if has_history else None,
        hotspots=features, empty=empty, areas=areas, machines=machines, circles=circles)
