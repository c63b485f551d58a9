"""Open, acknowledge and resolve alerts in the database: the one place alerts change state.

Each change also queues its notifications in the same transaction
(backend/notify/outbox.py), so a committed change is never left unannounced.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from backend.alerts.rules import AlertSpec
from backend.dbutil import insert_ignore
from backend.models import Alert, AlertStatus, AlertType, utcnow
from backend.notify.facts import FACT_COLUMNS, AlertEvent, facts_from_mapping, facts_of
from backend.notify.outbox import record_changes

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"


def open_alert(
    session: Session,
    spec: AlertSpec,
    *,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> bool:
    """Open ``spec`` unless an unresolved alert of its type and subject exists; say if it did."""
    now = now or utcnow()
    row = {
        "type": spec.type.value,
        "severity": spec.severity.value,
        "subject": spec.subject,
        "machine_id": spec.machine_id,
        "message": spec.message,
        "status": AlertStatus.OPEN.value,
        "opened_at": now,
        "details": details or {},
    }
    # The partial unique index turns a second open into a no-op, also when
    # two workers race to open the same alert.
    inserted = insert_ignore(session, Alert, [row], returning=("id",))
    if inserted:
        log.info("alert opened: %s %s", spec.type.value, spec.subject)
        facts = facts_from_mapping({name: None for name in FACT_COLUMNS} | row
                                   | {"id": inserted[0][0]})
        record_changes(session, [facts], AlertEvent.OPENED, now=now)
    return bool(inserted)


def resolve_alerts(
    session: Session,
    alert_type: AlertType,
    subject: str,
    *,
    by: str = SYSTEM_ACTOR,
    now: datetime | None = None,
) -> int:
    """Resolve the unresolved alert of ``alert_type`` for ``subject``; return how many."""
    now = now or utcnow()
    table = Alert.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        update(table)
        .where(
            table.c.type == alert_type.value,
            table.c.subject == subject,
            table.c.status != AlertStatus.RESOLVED.value,
        )
        .values(status=AlertStatus.RESOLVED.value, resolved_at=now, resolved_by=by)
        .returning(*(table.c[name] for name in FACT_COLUMNS))
    ).mappings().all()
    if rows:
        log.info("alert resolved: %s %s by %s", alert_type.value, subject, by)
        record_changes(session, [facts_from_mapping(r) for r in rows], AlertEvent.RESOLVED,
                       now=now)
    return len(rows)


def acknowledge(session: Session, alert: Alert, *, by: str, now: datetime | None = None) -> bool:
    """Acknowledge an open ``alert`` (loaded in ``session``); say whether it changed."""
    if alert.status != AlertStatus.OPEN.value:
        return False
    now = now or utcnow()
    alert.status, alert.acknowledged_at, alert.acknowledged_by = (
        AlertStatus.ACKNOWLEDGED.value, now, by)
    session.add(alert)
    record_changes(session, [facts_of(alert)], AlertEvent.ACKNOWLEDGED, now=now)
    return True


def resolve(session: Session, alert: Alert, *, by: str, now: datetime | None = None) -> bool:
    """Resolve ``alert`` (loaded in ``session``) unless it is; say whether it changed."""
    if alert.status == AlertStatus.RESOLVED.value:
        return False
    now = now or utcnow()
    alert.status, alert.resolved_at, alert.resolved_by = AlertStatus.RESOLVED.value, now, by
    session.add(alert)
    record_changes(session, [facts_of(alert)], AlertEvent.RESOLVED, now=now)
    return True
