"""Ingest upkeep: the one list of periodic steps, wherever it runs.

On SQLite the single writer runs them between batches (``Committer.maintain``);
on PostgreSQL they are the shared job ``ingest-maintenance`` that one worker
at a time holds (backend/jobs/catalog.py). Both call these functions, so a
step added here runs in both deployments.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from backend.commands.store import prune_finished
from backend.config import Settings
from backend.ingest.dead_letters import prune_dead_letters, resolve_ended_floods
from backend.ingest.maintenance import mark_silent_machines, scan_delivery_gaps
from backend.lots.retention import prune_temperature_readings
from backend.lots.store import sweep_lot_alerts


def run_upkeep(session: Session, *, now: datetime, settings: Settings) -> None:
    """Gap timeouts, the offline watchdog, flood ends and retention, in one transaction.

    The caller commits: on SQLite every write takes the one write lock, so one
    transaction holds it once.
    """
    scan_delivery_gaps(session, now=now, timeout=timedelta(seconds=settings.gap_timeout_s))
    mark_silent_machines(session, now=now, timeout=timedelta(seconds=settings.offline_timeout_s))
    prune_dead_letters(session, before=now - timedelta(days=settings.dead_letter_retention_days))
    prune_temperature_readings(
        session, before=now - timedelta(days=settings.temperature_retention_days)
    )
    resolve_ended_floods(
        session, now=now, window=timedelta(seconds=settings.dead_letter_quota_window_s)
    )
    prune_finished(session=session,
                   before=now - timedelta(days=settings.commands_retention_days))


def run_lot_check(session: Session, *, now: datetime, settings: Settings) -> None:
    """Expiry and heat alerts for the lots in machines (slow to change: run less often)."""
    sweep_lot_alerts(session, settings=settings, now=now)
