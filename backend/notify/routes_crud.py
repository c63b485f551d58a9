"""Keyword-only functions for notification routes and the delivery list (audited writes)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from backend.audit import record_audit
from backend.models import DeliveryState, Notification, NotificationRoute, utcnow
from backend.notify.facts import AlertEvent
from backend.notify.outbox import destination_label
from backend.notify.payload import route_test_payload

RULE_FIELDS = ("alert_types", "min_severity", "areas", "polygon", "enabled", "timeout_s",
               "escalate_after_min", "escalate_to_route_id", "quiet_start", "quiet_end",
               "quiet_tz", "active_from", "active_until", "active_days",
               "machine_tags")


class RouteNotFoundError(LookupError):
    """No route has that id."""


class RouteConflictError(ValueError):
    """The change clashes with another route or the route's state."""


def route_view(route: NotificationRoute) -> dict[str, Any]:
    """Return what may be shown (and audited) of a route: no secret, no full target."""
    return {
        "id": route.id,
        "name": route.name,
        "channel": route.channel,
        "destination": destination_label(route.channel, route.target),
        "secret_set": bool(route.secret),
        **{name: getattr(route, name) for name in RULE_FIELDS},
        "created_at": route.created_at,
    }


def _audited(route: NotificationRoute) -> dict[str, Any]:
    view = route_view(route)
    view.pop("created_at")
    return view


def list_routes(*, session: Session) -> list[NotificationRoute]:
    """Return every route by id."""
    return list(session.exec(select(NotificationRoute).order_by(col(NotificationRoute.id))))


def get_route(*, session: Session, route_id: int) -> NotificationRoute:
    """Return the route ``route_id`` or raise RouteNotFoundError."""
    route = session.get(NotificationRoute, route_id)
    if route is None:
        raise RouteNotFoundError(f"notification route {route_id} does not exist")
    return route


def _check_escalation(session: Session, route_id: int | None, target: int | None) -> None:
    if target is None:
        return
    if target == route_id:
        raise RouteConflictError("a route cannot escalate to itself")
    if session.get(NotificationRoute, target) is None:
        raise RouteConflictError(f"escalation route {target} does not exist")


def create_route(*, session: Session, values: Mapping[str, Any], actor: str,
                 request_id: str | None = None) -> NotificationRoute:
    """Create a route from validated ``values``; audited; RouteConflictError on a taken name."""
    _check_escalation(session, None, values.get("escalate_to_route_id"))
    route = NotificationRoute(**values)
    session.add(route)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise RouteConflictError(f"a route named {values['name']!r} exists") from None
    assert route.id is not None
    record_audit(session, actor=actor, action="notification_route.create",
                 object_type="notification_route", object_id=route.id, after=_audited(route),
                 request_id=request_id)
    session.commit()
    return route


def update_route(*, session: Session, route_id: int, changes: Mapping[str, Any], actor: str,
                 request_id: str | None = None) -> NotificationRoute:
    """Apply validated ``changes`` to a route; audited."""
    route = get_route(session=session, route_id=route_id)
    before = _audited(route)
    for name, value in changes.items():
        setattr(route, name, value)
    _check_escalation(session, route_id, route.escalate_to_route_id)
    session.add(route)
    record_audit(session, actor=actor, action="notification_route.update",
                 object_type="notification_route", object_id=route_id, before=before,
                 after=_audited(route), request_id=request_id)
    session.commit()
    return route


def delete_route(*, session: Session, route_id: int, actor: str,
                 request_id: str | None = None) -> None:
    """Delete a route (its delivery history stays; its pending deliveries fail); audited."""
    route = get_route(session=session, route_id=route_id)
    record_audit(session, actor=actor, action="notification_route.delete",
                 object_type="notification_route", object_id=route_id, before=_audited(route),
                 request_id=request_id)
    session.delete(route)
    session.commit()


def queue_test(*, session: Session, route_id: int, actor: str,
               request_id: str | None = None) -> Notification:
    """Queue a test message to an enabled route; audited."""
    route = get_route(session=session, route_id=route_id)
    if not route.enabled:
        raise RouteConflictError(f"notification route {route_id} is disabled")
    now = utcnow()
    note = Notification(
        delivery_id=str(uuid.uuid4()), route_id=route_id, channel=route.channel,
        destination=destination_label(route.channel, route.target),
        event=AlertEvent.TEST.value, payload=route_test_payload(route.name, at=now),
        next_attempt_at=now, created_at=now,
    )
    session.add(note)
    session.flush()
    record_audit(session, actor=actor, action="notification_route.test",
                 object_type="notification_route", object_id=route_id,
                 after={"delivery_id": note.delivery_id}, request_id=request_id)
    session.commit()
    return note


def list_notifications(
    *,
    session: Session,
    state: DeliveryState | None = None,
    route_id: int | None = None,
    alert_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Notification], int]:
    """Return a page of deliveries, newest first, and how many match."""
    where = []
    if state is not None:
        where.append(col(Notification.state) == state.value)
    if route_id is not None:
        where.append(col(Notification.route_id) == route_id)
    if alert_id is not None:
        where.append(col(Notification.alert_id) == alert_id)
    total = session.exec(select(func.count()).select_from(Notification).where(*where)).one()
    page = session.exec(
        select(Notification).where(*where).order_by(col(Notification.id).desc())
        .offset(offset).limit(limit)
    ).all()
    return list(page), int(total)
