"""Periodic notification jobs: escalate unacknowledged critical alerts, send quiet-hour digests.

Both take ``now`` so that tests run them on a simulated clock; the dispatcher
runs them every ``NX_NOTIFY_JOBS_INTERVAL_S``. Several processes may run them
at once: an escalation locks its alert row and checks again, a digest claims
its held rows FOR UPDATE SKIP LOCKED (SQLite has one writer at a time).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, select, update
from sqlmodel import Session

from backend.models import (
    Alert,
    AlertStatus,
    DeliveryState,
    Notification,
    NotificationRoute,
    Severity,
)
from backend.notify.facts import AlertEvent, facts_of
from backend.notify.outbox import destination_label, record_changes

log = logging.getLogger(__name__)

_N: Table = Notification.__table__  # type: ignore[attr-defined]
_R: Table = NotificationRoute.__table__  # type: ignore[attr-defined]
_A: Table = Alert.__table__  # type: ignore[attr-defined]
CHAIN_EVENTS = (AlertEvent.OPENED.value, AlertEvent.ESCALATED.value)


def _told_routes(session: Session, alert_id: int) -> set[int]:
    rows = session.execute(
        select(_N.c.route_id).where(
            _N.c.alert_id == alert_id, _N.c.event.in_(CHAIN_EVENTS),
            _N.c.state != DeliveryState.CANCELLED.value)
    ).scalars().all()
    return {r for r in rows if r is not None}


def escalate_due(session: Session, *, now: datetime) -> int:
    """Tell the next route of every critical alert left unacknowledged too long; return how many.

    A route told of an open critical alert (opened or escalated to it) with
    ``escalate_after_min`` and ``escalate_to_route_id`` hands it on once that
    many minutes passed since it was told; acknowledging (or resolving) the
    alert stops the chain, and a route is never told twice.
    """
    rows = session.execute(
        select(_N.c.alert_id, _N.c.created_at, _R.c.escalate_after_min,
               _R.c.escalate_to_route_id)
        .join(_R, _R.c.id == _N.c.route_id)
        .join(_A, _A.c.id == _N.c.alert_id)
        .where(
            _N.c.event.in_(CHAIN_EVENTS),
            _N.c.state != DeliveryState.CANCELLED.value,
            _R.c.escalate_to_route_id.is_not(None),
            _R.c.escalate_after_min.is_not(None),
            _A.c.status == AlertStatus.OPEN.value,
            _A.c.severity == Severity.CRITICAL.value,
        )
    ).all()
    due = sorted({
        (r.alert_id, r.escalate_to_route_id) for r in rows
        if r.created_at + timedelta(minutes=r.escalate_after_min) <= now
    })
    sent = 0
    for alert_id, next_route in due:
        # Lock the alert: one process escalates it, the others then see the row.
        alert = session.execute(
            select(Alert).where(_A.c.id == alert_id).with_for_update()
        ).scalar_one_or_none()
        if alert is None or alert.status != AlertStatus.OPEN.value:
            continue
        if next_route in _told_routes(session, alert_id):
            continue
        added = record_changes(session, [facts_of(alert)], AlertEvent.ESCALATED, now=now,
                               route_ids=[next_route])
        if added:
            log.info("alert %s escalated to route %d", alert.subject, next_route)
        sent += added
    return sent


def _digest_payload(route_name: str, items: list[dict[str, Any]], now: datetime
                    ) -> dict[str, Any]:
    return {
        "event": "digest",
        "at": now.isoformat(),
        "message": f"{len(items)} notifications for {route_name} held during quiet hours",
        "items": items,
        "console_path": "/alerts",
    }


def send_digests(session: Session, *, now: datetime) -> int:
    """Turn the held notifications of routes whose quiet hours ended into one digest each."""
    held = session.execute(
        select(_N.c.id, _N.c.route_id, _N.c.event, _N.c.payload, _N.c.delivery_id)
        .where(_N.c.state == DeliveryState.HELD.value, _N.c.next_attempt_at <= now)
        .order_by(_N.c.id)
        .with_for_update(skip_locked=True)
    ).all()
    by_route: dict[int, list[Any]] = defaultdict(list)
    for row in held:
        by_route[row.route_id].append(row)
    made = 0
    for route_id, rows in by_route.items():
        route = session.get(NotificationRoute, route_id)
        ids = [r.id for r in rows]
        if route is None:
            session.execute(update(_N).where(_N.c.id.in_(ids)).values(
                state=DeliveryState.FAILED.value, last_error="the route is deleted"))
            continue
        items = [{"event": r.event, "delivery_id": r.delivery_id,
                  "alert": r.payload.get("alert")} for r in rows]
        session.add(Notification(
            delivery_id=str(uuid.uuid4()), route_id=route_id, channel=route.channel,
            destination=destination_label(route.channel, route.target), event="digest",
            payload=_digest_payload(route.name, items, now), next_attempt_at=now,
            created_at=now,
        ))
        session.execute(update(_N).where(and_(_N.c.id.in_(ids),
                                              _N.c.state == DeliveryState.HELD.value))
                        .values(state=DeliveryState.DIGESTED.value))
        made += 1
        log.info("digest of %d notifications queued for route %s", len(rows), route.name)
    return made
