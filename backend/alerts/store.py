"""Open and resolve alerts in the database, idempotently."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from backend.alerts.rules import AlertSpec
from backend.dbutil import insert_ignore
from backend.models import Alert, AlertStatus, AlertType, utcnow

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
    row = {
        "type": spec.type.value,
        "severity": spec.severity.value,
        "subject": spec.subject,
        "machine_id": spec.machine_id,
        "message": spec.message,
        "status": AlertStatus.OPEN.value,
        "opened_at": now or utcnow(),
        "details": details or {},
    }
    # The partial unique index turns a second open into a no-op, also when
    # two workers race to open the same alert.
    inserted = insert_ignore(session, Alert, [row], returning=("id",))
    if inserted:
        log.info("alert opened: %s %s", spec.type.value, spec.subject)
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
    table = Alert.__table__  # type: ignore[attr-defined]
    result = session.execute(
        update(table)
        .where(
            table.c.type == alert_type.value,
            table.c.subject == subject,
            table.c.status != AlertStatus.RESOLVED.value,
        )
        .values(status=AlertStatus.RESOLVED.value, resolved_at=now or utcnow(), resolved_by=by)
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count:
        log.info("alert resolved: %s %s by %s", alert_type.value, subject, by)
    return count
