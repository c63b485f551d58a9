"""Claim due notifications for one dispatcher and record how their deliveries went.

A claim is one UPDATE of rows picked by a sub-select: on PostgreSQL the
sub-select locks its rows FOR UPDATE SKIP LOCKED, so dispatchers in several
processes never pick the same row; SQLite has one writer at a time, so the
statement is atomic there as it is. A claimed row carries the claimer's id and
a lease; a dispatcher that dies leaves rows that fall due again when the lease
ends (at least once). Results are written only while the claim is still ours.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, or_, select, update
from sqlmodel import Session

from backend.models import DeliveryState, Notification

_T: Table = Notification.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claimed:
    """A notification a dispatcher holds for delivery."""

    id: int
    delivery_id: str
    route_id: int
    channel: str
    event: str
    alert_id: int | None
    payload: dict[str, Any]
    attempts: int
    claim_id: str


def claim_due(
    session: Session,
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    exclude_routes: Collection[int] = (),
) -> list[Claimed]:
    """Claim up to ``limit`` due notifications, not for ``exclude_routes``; the caller commits."""
    claim_id = str(uuid.uuid4())
    due = or_(
        and_(_T.c.state == DeliveryState.PENDING.value, _T.c.next_attempt_at <= now),
        and_(_T.c.state == DeliveryState.DELIVERING.value, _T.c.lease_until < now),
    )
    pick = select(_T.c.id).where(due, _T.c.route_id.is_not(None))
    if exclude_routes:
        pick = pick.where(_T.c.route_id.not_in(sorted(exclude_routes)))
    pick = (
        pick.order_by(_T.c.next_attempt_at, _T.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        update(_T)
        .where(_T.c.id.in_(pick.scalar_subquery()))
        .values(state=DeliveryState.DELIVERING.value, claim_id=claim_id, lease_until=now + lease)
        .returning(_T.c.id, _T.c.delivery_id, _T.c.route_id, _T.c.channel, _T.c.event,
                   _T.c.alert_id, _T.c.payload, _T.c.attempts, _T.c.next_attempt_at)
    ).all()
    rows = sorted(rows, key=lambda r: (r.next_attempt_at, r.id))
    return [
        Claimed(r.id, r.delivery_id, r.route_id, r.channel, r.event, r.alert_id, r.payload,
                r.attempts, claim_id)
        for r in rows
    ]


def _ours(item: Claimed) -> Any:
    return and_(_T.c.id == item.id, _T.c.claim_id == item.claim_id,
                _T.c.state == DeliveryState.DELIVERING.value)


def mark_delivered(session: Session, item: Claimed, *, now: datetime) -> bool:
    """Record a delivery; return False if the claim was lost (another dispatcher has it)."""
    result = session.execute(
        update(_T).where(_ours(item)).values(
            state=DeliveryState.DELIVERED.value, attempts=_T.c.attempts + 1, delivered_at=now,
            last_error=None, claim_id=None, lease_until=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_failed(
    session: Session, item: Claimed, *, error: str, retry_at: datetime | None
) -> bool:
    """Record a failed attempt: due again at ``retry_at``, or failed for good when None."""
    values: dict[str, Any] = {
        "attempts": _T.c.attempts + 1, "last_error": error[:500], "claim_id": None,
        "lease_until": None,
    }
    if retry_at is None:
        values["state"] = DeliveryState.FAILED.value
    else:
        values["state"] = DeliveryState.PENDING.value
        values["next_attempt_at"] = retry_at
    result = session.execute(update(_T).where(_ours(item)).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, items: Collection[Claimed], *, due: datetime) -> None:
    """Hand claimed rows back untried (no attempt counted), due at ``due``."""
    for item in items:
        session.execute(
            update(_T).where(_ours(item)).values(
                state=DeliveryState.PENDING.value, next_attempt_at=due, claim_id=None,
                lease_until=None)
        )
