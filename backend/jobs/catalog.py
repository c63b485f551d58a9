"""The backend's periodic jobs, each one transaction in its own period."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from backend.config import Settings
from backend.db import session_scope
from backend.jobs.coordinator import Job, prune_runs

log = logging.getLogger(__name__)

RUN_LOG_PERIOD_S = 3600.0

INGEST_MAINTENANCE = "ingest-maintenance"
"""The ingest upkeep steps (backend/ingest/upkeep.py), in one transaction."""
RUN_LOG_RETENTION = "job-run-retention"
HOTSPOT_SCAN = "hotspot-scan"
FORECAST = "stock-forecast"
LOT_CHECK = "lot-check"
NOTIFY_ESCALATION = "notify-escalation"
WEEKLY_REPORT = "weekly-report"
RETAINED_READER = "retained-reader"
"""The role of reading the retained status and stock topics (one ingest worker at a time)."""
BROKER_WATCH = "broker-watch"
"""The role of watching the broker's dropped-message counter (backend/ingest/broker_watch.py)."""


def ingest_jobs(settings: Settings) -> list[Job]:
    """Return the maintenance and run-log jobs ingest workers share."""
    from backend.ingest.upkeep import run_lot_check, run_upkeep

    run_log_keep = timedelta(days=settings.jobs_run_log_days)

    def maintain(session: Session, now: datetime) -> None:
        run_upkeep(session, now=now, settings=settings)

    def check_lots(session: Session, now: datetime) -> None:
        run_lot_check(session, now=now, settings=settings)

    return [
        # One transaction, as before: on SQLite every write takes the one write lock.
        Job(INGEST_MAINTENANCE, settings.ingest_maintenance_interval_s, work=maintain),
        # Expiry and heat change slowly: the lots are looked at less often.
        Job(LOT_CHECK, settings.lot_check_interval_s, work=check_lots),
        Job(RUN_LOG_RETENTION, RUN_LOG_PERIOD_S,
            work=lambda session, now: prune_runs(session, before=now - run_log_keep)),
    ]


def hotspot_job(engine: Engine) -> Job:
    """Return the hotspot scan (settings NX_HOTSPOT_*)."""
    from backend.hotspots.settings import HotspotSettings
    from backend.hotspots.store import run_hotspot_job

    settings = HotspotSettings()

    def scan(_now: datetime) -> None:
        log.info("hotspot job: %s", run_hotspot_job(engine, settings))

    return Job(HOTSPOT_SCAN, settings.interval_s, run=scan)


def forecast_job(engine: Engine) -> Job:
    """Return the stock-out forecast tick (settings NX_FORECAST_*)."""
    from backend.forecast.settings import ForecastSettings
    from backend.forecast.store import run_forecast_tick

    settings = ForecastSettings()

    def tick(_now: datetime) -> None:
        log.info("forecast tick: %s", run_forecast_tick(engine, settings))

    return Job(FORECAST, settings.interval_s, run=tick)


def notify_job(engine: Engine, settings: Settings) -> Job:
    """Return the escalation and quiet-hour digest job of the notification dispatcher."""
    from backend.notify.jobs import escalate_due, send_digests

    def escalate(now: datetime) -> tuple[int, int]:
        with session_scope(engine) as session:
            escalated = escalate_due(session, now=now)
        with session_scope(engine) as session:
            digests = send_digests(session, now=now)
        return escalated, digests

    return Job(NOTIFY_ESCALATION, settings.notify_jobs_interval_s, run=escalate)


def weekly_report_job(settings: Settings) -> Job:
    """Return the job that sends each week's situation report to the routes that take it."""
    from backend.report.send import send_due_report

    def send(session: Session, now: datetime) -> None:
        # In the claim's transaction: the period's claim and the queued rows commit together.
        sent = send_due_report(session, settings, now=now)
        if sent:
            log.info("weekly report queued for %d routes", sent)

    return Job(WEEKLY_REPORT, settings.report_weekly_check_s, work=send)
