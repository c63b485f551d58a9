"""Send the weekly situation report through the notification routes (event ``report.weekly``).

A route takes the report when its ``alert_types`` lists ``report.weekly``; an
empty list means every *alert* type and never the report, which goes only to
routes that asked for it (it is long, and meant for officials). The report is
gathered once, with the health role's suppression (backend/report/weekly.py),
and stored whole in each route's outbox row: a retry sends the same bytes and
the dispatcher reads nothing more to send it.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from backend.config import Settings
from backend.models import Notification, NotificationRoute
from backend.notify.outbox import destination_label
from backend.report.html import render, report_title
from backend.report.weekly import WeeklyReport, weekly_report
from backend.stats.city import hotspot_settings

log = logging.getLogger(__name__)

WEEKLY_EVENT = "report.weekly"
"""The event name of the weekly report, and the value a route lists in ``alert_types``."""
TREND_WEEKS = 8
CONSOLE_PATH = "/hotspots"


def report_key(end: dt.date) -> str:
    """Return the outbox key of the week ending ``end``: one delivery per route and week."""
    return f"{WEEKLY_EVENT}|{end.isoformat()}"


def build(session: Session, settings: Settings, *, end: dt.date, now: dt.datetime,
          weeks: int = TREND_WEEKS) -> tuple[WeeklyReport, str]:
    """Gather the week ending ``end`` and render it; counts suppressed for non-admins."""
    report = weekly_report(session, end=end, weeks=weeks, k=settings.stats_suppression_k,
                           hotspots=hotspot_settings(settings))
    return report, render(report, generated_at=now)


def report_payload(report: WeeklyReport, page: str, *, at: dt.datetime) -> dict[str, Any]:
    """Return the stored body of a report notification: a summary and the whole page.

    Every count in it is the report's own, already suppressed: a total under
    k is ``"<k"``, as the page prints it.
    """
    totals = {label: (f"{value:,}" if value is not None else f"<{report.k}")
              for label, value in report.totals.items()}
    clusters = [{"id": f["id"], "status": f["properties"].get("status"),
                 "summary": f["properties"].get("summary"),
                 "explanation": f["properties"].get("explanation")}
                for f in report.hotspots]
    return {
        "event": WEEKLY_EVENT,
        "at": at.isoformat(),
        "report": {
            "title": report_title(report),
            "start": report.start.isoformat(),
            "end": report.end.isoformat(),
            "timezone": report.timezone,
            "suppression_k": report.k,
            "dispenses": totals,
            "clusters": clusters,
            "machines_out_of_naloxone": len(report.empty),
            "filename": f"naloxnet-weekly-{report.end.isoformat()}.html",
        },
        "html": page,
        "console_path": CONSOLE_PATH,
    }


def report_routes(session: Session, *, lock: bool = False) -> list[NotificationRoute]:
    """Return the enabled routes that take the weekly report, by id (``lock``: FOR UPDATE)."""
    query = select(NotificationRoute).where(col(NotificationRoute.enabled)).order_by(
        col(NotificationRoute.id))
    rows = session.exec(query.with_for_update() if lock else query).all()
    # alert_types is a JSON list: filtered here rather than with per-dialect JSON SQL.
    return [r for r in rows if WEEKLY_EVENT in r.alert_types]


def _sent(session: Session, key: str) -> set[int]:
    rows = session.exec(
        select(Notification.route_id).where(col(Notification.alert_key) == key)
    ).all()
    return {r for r in rows if r is not None}


def queue_report(session: Session, routes: Sequence[NotificationRoute], report: WeeklyReport,
                 page: str, *, now: dt.datetime) -> int:
    """Add one delivery of the report per route to the session; return how many."""
    payload = report_payload(report, page, at=now)
    key = report_key(report.end)
    for route in routes:
        session.add(Notification(
            delivery_id=str(uuid.uuid4()), route_id=route.id, channel=route.channel,
            destination=destination_label(route.channel, route.target), alert_key=key,
            event=WEEKLY_EVENT, payload=payload, next_attempt_at=now, created_at=now))
    if routes:
        log.info("weekly report of %s queued for %d routes", report.end, len(routes))
    return len(routes)


def due_week(now: dt.datetime, zone: ZoneInfo, hour: int) -> tuple[dt.date, dt.datetime]:
    """Return the last week (Monday to Sunday, local) whose report is due at ``now``, and when.

    A week's report is due at ``hour`` local time on the Monday after it.
    """
    local = now.astimezone(zone)
    sunday = local.date() - dt.timedelta(days=local.weekday() + 1)
    due = dt.datetime.combine(sunday + dt.timedelta(days=1), dt.time(hour), zone)
    if local < due:
        sunday -= dt.timedelta(days=7)
        due = dt.datetime.combine(sunday + dt.timedelta(days=1), dt.time(hour), zone)
    return sunday, due


def send_due_report(session: Session, settings: Settings, *, now: dt.datetime) -> int:
    """Queue the last due week's report for each route that takes it and has not had it.

    Routes made after the report fell due wait for the next week's. Run as the
    periodic job ``weekly-report`` (backend/jobs/catalog.py), once per period
    across processes; the per-route check makes any number of runs send once.
    """
    zone = ZoneInfo(hotspot_settings(settings).timezone)
    end, due = due_week(now, zone, settings.report_weekly_hour)
    # The routes are locked first: a second run at the same moment (PostgreSQL) waits
    # here and then sees this one's rows; SQLite's one writer orders them anyway.
    routes = report_routes(session, lock=True)
    sent = _sent(session, report_key(end))
    routes = [r for r in routes if r.id not in sent and _aware(r.created_at) <= due]
    if not routes:
        return 0
    report, page = build(session, settings, end=end, now=now)
    return queue_report(session, routes, report, page, now=now)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
