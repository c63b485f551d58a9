"""The hotspot job's database side: read sites and dispenses, apply the alert plan, schedule."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from backend.alerts.rules import AlertSpec
from backend.alerts.store import SYSTEM_ACTOR, open_alert, resolve
from backend.db import session_scope
from backend.hotspots.areas import SCAN_DETECTOR, Area, Site
from backend.hotspots.job import ActiveAlert, Plan, compute_areas, reconcile
from backend.hotspots.settings import HotspotSettings
from backend.models import Alert, AlertStatus, AlertType, DispenseEvent, Machine, Product, Severity
from backend.models.types import utcnow

log = logging.getLogger(__name__)

CRITICAL_RECURRENCE_DAYS = 365.0
"""A cluster expected by chance less than once a year is critical."""


@dataclass(frozen=True)
class JobReport:
    """What one run of the job found and did."""

    areas: int
    opened: int
    updated: int
    resolved: int


def load_sites(session: Session) -> list[Site]:
    """Return the active machines, their coordinates and named areas, in a stable order."""
    rows = session.exec(select(Machine).where(col(Machine.active)).order_by(col(Machine.id)))
    return [Site(m.id, m.lat, m.lon, m.area) for m in rows]


def naloxone_products(session: Session, settings: HotspotSettings) -> list[str]:
    """Return the product codes whose dispenses count."""
    if settings.products is not None:
        return list(settings.products)
    return list(session.exec(select(Product.code).where(col(Product.is_naloxone))))


def load_dispenses(
    session: Session,
    products: list[str],
    first: dt.date,
    last: dt.date,
    zone: ZoneInfo,
) -> list[tuple[str, dt.datetime]]:
    """Return (machine id, time) of every successful dispense of `products` on those days."""
    lo = dt.datetime.combine(first, dt.time.min, zone)
    hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, zone)
    rows = session.exec(
        select(DispenseEvent.machine_id, DispenseEvent.device_time).where(
            DispenseEvent.result == "ok",
            col(DispenseEvent.product).in_(products),
            col(DispenseEvent.device_time) >= lo,
            col(DispenseEvent.device_time) < hi,
        )
    )
    return [(machine_id, when) for machine_id, when in rows]


def newest_dispense(session: Session) -> dt.datetime | None:
    """Return the device time of the newest successful dispense, if any."""
    newest = session.exec(
        select(func.max(DispenseEvent.device_time)).where(DispenseEvent.result == "ok")
    ).one()
    if newest is None:
        return None
    if isinstance(newest, str):  # SQLite's max() hands back the stored text
        newest = dt.datetime.fromisoformat(newest)
    return newest if newest.tzinfo else newest.replace(tzinfo=dt.UTC)


def active_hotspot_alerts(session: Session) -> list[Alert]:
    """Return hotspot alerts not yet resolved, oldest first."""
    return list(
        session.exec(
            select(Alert)
            .where(
                Alert.type == AlertType.OVERDOSE_HOTSPOT.value,
                Alert.status != AlertStatus.RESOLVED.value,
            )
            .order_by(col(Alert.id))
        )
    )


def _severity(area: Area) -> Severity:
    """Rate an area: critical when rarer than once a year by chance."""
    if area.recurrence_days is not None and area.recurrence_days >= CRITICAL_RECURRENCE_DAYS:
        return Severity.CRITICAL
    return Severity.WARNING


def apply_plan(session: Session, plan: Plan, now: dt.datetime) -> tuple[int, int, int]:
    """Open, refresh and resolve hotspot alerts; return how many of each."""
    opened = 0
    for area in plan.open:
        spec = AlertSpec(
            AlertType.OVERDOSE_HOTSPOT, _severity(area), area.subject, None, area.message()
        )
        opened += open_alert(session, spec, details=area.details(), now=now)
    for alert_id, area in plan.update:
        alert = session.get(Alert, alert_id)
        if alert is not None:
            alert.details = {**area.details(), "last_seen_run": now.isoformat()}
            alert.message = area.message()
            session.add(alert)
    for alert_id in plan.resolve:
        alert = session.get(Alert, alert_id)
        if alert is not None and resolve(session, alert, by=SYSTEM_ACTOR, now=now):
            log.info("hotspot alert %s resolved: the cluster is gone", alert.subject)
    return opened, len(plan.update), len(plan.resolve)


def run_hotspot_job(
    engine: Engine,
    settings: HotspotSettings,
    *,
    now: dt.datetime | None = None,
) -> JobReport:
    """Scan the study period ending today and bring hotspot alerts up to date."""
    if now is None:
        now = utcnow()
        if settings.clock == "data":
            with session_scope(engine) as session:
                now = newest_dispense(session) or now
    zone = ZoneInfo(settings.timezone)
    today = now.astimezone(zone).date()
    first = today - dt.timedelta(days=settings.study_days - 1)
    with session_scope(engine) as session:
        sites = load_sites(session)
        dispenses = load_dispenses(
            session, naloxone_products(session, settings), first, today, zone
        )
    # The scan runs outside any transaction: it takes seconds on a large fleet.
    areas = compute_areas(sites, dispenses, now, settings)
    with session_scope(engine) as session:
        active = [
            ActiveAlert(
                a.id,
                a.subject,
                frozenset(a.details.get("machines", [])),
                str(a.details.get("detector", SCAN_DETECTOR)),
            )
            for a in active_hotspot_alerts(session)
            if a.id is not None
        ]
        opened, updated, resolved = apply_plan(session, reconcile(active, areas, settings), now)
    return JobReport(areas=len(areas), opened=opened, updated=updated, resolved=resolved)
