"""Write an alert change's notifications in the transaction of the change (the outbox).

Called only from backend/alerts/store.py, the one place alerts change state.
Openings go to every enabled route that matches; acknowledgements and
resolutions only to the routes that were told the alert opened. An alert
that opens again within the flap window of its last opening on a route is
sent when the window ends, and not at all if it resolved by then: a
flapping alert makes one notification per window, not dozens.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Table, insert, update
from sqlmodel import Session, col, select

from backend.models import (
    Channel,
    DeliveryState,
    Machine,
    Notification,
    NotificationRoute,
    Severity,
)
from backend.notify.active import ActiveHours
from backend.notify.facts import AlertEvent, AlertFacts
from backend.notify.geo import Polygon, parse_area
from backend.notify.payload import alert_payload
from backend.notify.quiet import QuietHours
from backend.notify.routing import RouteRule, route_matches

log = logging.getLogger(__name__)

FLAP_WINDOW = timedelta(minutes=2)
"""Re-openings of one alert within this of the last opening on a route wait for its end."""

_CACHE_KEY = "nx_notify_routes"


@dataclass(frozen=True)
class _Route:
    rule: RouteRule
    name: str
    channel: str
    destination: str
    quiet: QuietHours | None
    active: ActiveHours | None = None


def destination_label(channel: str, target: str) -> str:
    """Return what may be shown of a route's target: no credentials, no paths or queries."""
    if channel == Channel.EMAIL.value:
        return target[:200]
    parts = urlsplit(target)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"[:200]


def _routes(session: Session) -> list[_Route]:
    """Return the enabled routes, read once per transaction."""
    transaction = session.get_transaction()
    cached = session.info.get(_CACHE_KEY)
    if cached is not None and cached[0] is transaction:
        routes: list[_Route] = cached[1]
        return routes
    rows = session.exec(
        select(NotificationRoute).where(col(NotificationRoute.enabled)).order_by(
            col(NotificationRoute.id))
    ).all()
    routes = [
        _Route(
            RouteRule(row.id, frozenset(row.alert_types), row.min_severity,
                      frozenset(row.areas), _polygons(row), frozenset(row.machine_tags)),
            row.name,
            row.channel,
            destination_label(row.channel, row.target),
            _quiet(row),
            _active(row),
        )
        for row in rows
        if row.id is not None
    ]
    session.info[_CACHE_KEY] = (transaction, routes)
    return routes


def _polygons(route: NotificationRoute) -> tuple[Polygon, ...]:
    if route.polygon is None:
        return ()
    try:
        return parse_area(route.polygon)
    except ValueError:
        # The API validates it; a bad value written by hand must not widen the route.
        log.warning("route %s: unusable polygon; it takes only its named areas", route.name)
        return ()


def _quiet(route: NotificationRoute) -> QuietHours | None:
    try:
        return QuietHours.of(route.quiet_start, route.quiet_end, route.quiet_tz)
    except (ValueError, KeyError):
        # The API validates these; a bad value written by hand means no quiet hours.
        log.warning("route %s: unusable quiet hours ignored", route.name)
        return None


def _active(route: NotificationRoute) -> ActiveHours | None:
    try:
        return ActiveHours.of(route.active_from, route.active_until, route.active_days,
                              route.quiet_tz)
    except (ValueError, KeyError):
        # The API validates these; a bad value written by hand must not silence the route.
        log.warning("route %s: unusable active hours ignored", route.name)
        return None


def _on_duty(routes: list[_Route], severity: str, now: datetime) -> list[_Route]:
    """Return the routes of ``routes`` active at ``now``.

    A critical alert that no matching route is active for goes to all of them
    rather than to nobody.
    """
    active = [r for r in routes if r.active is None or r.active.contains(now)]
    if not active and severity == Severity.CRITICAL.value:
        return routes
    return active


def _listed_machines(details: Any) -> list[str]:
    machines = details.get("machines") if isinstance(details, dict) else None
    return [m for m in machines if isinstance(m, str)] if isinstance(machines, list) else []


@dataclass(frozen=True)
class _Place:
    areas: frozenset[str]
    points: tuple[tuple[float, float], ...]
    tags: frozenset[str] = frozenset()


def _places(session: Session, alerts: Sequence[AlertFacts]) -> dict[int, _Place]:
    """Return each alert's named areas and (lon, lat) points: its machine's, or a hotspot's."""
    machines_of = {
        a.id: [a.machine_id] if a.machine_id else _listed_machines(a.details) for a in alerts
    }
    wanted = sorted({m for ms in machines_of.values() for m in ms})
    found: dict[str, tuple[str | None, float, float]] = {}
    tags_of: dict[str, list[str]] = {}
    if wanted:
        machines = session.exec(select(Machine).where(col(Machine.id).in_(wanted))).all()
        found = {m.id: (m.area, m.lon, m.lat) for m in machines}
        tags_of = {m.id: m.tags for m in machines}
    places: dict[int, _Place] = {}
    for alert in alerts:
        ms = [found[m] for m in machines_of[alert.id] if m in found]
        points = [(lon, lat) for _, lon, lat in ms]
        centre = (alert.details.get("lon"), alert.details.get("lat"))
        if all(isinstance(v, int | float) for v in centre):
            points.append((float(centre[0]), float(centre[1])))  # type: ignore[arg-type]
        tags = frozenset(t for m in machines_of[alert.id] for t in tags_of.get(m, ()))
        places[alert.id] = _Place(frozenset(a for a, _, _ in ms if a), tuple(points), tags)
    return places


def _told(session: Session, alert_ids: Sequence[int]) -> dict[int, dict[int, str]]:
    """Return, per alert, the routes sent (or about to be sent) its opening and that row's state."""
    rows = session.exec(
        select(Notification.alert_id, Notification.route_id, Notification.state).where(
            col(Notification.alert_id).in_(alert_ids),
            col(Notification.event).in_([AlertEvent.OPENED.value, AlertEvent.ESCALATED.value]),
            col(Notification.state) != DeliveryState.CANCELLED.value,
        )
    ).all()
    told: dict[int, dict[int, str]] = {}
    for alert_id, route_id, state in rows:
        if alert_id is not None and route_id is not None:
            told.setdefault(alert_id, {})[route_id] = state
    return told


def _last_opening(session: Session, route_id: int, key: str, since: datetime) -> datetime | None:
    """Return when the route's newest opening of ``key`` within the window is due, if any."""
    return session.exec(
        select(Notification.next_attempt_at)
        .where(
            col(Notification.route_id) == route_id,
            col(Notification.alert_key) == key,
            col(Notification.event) == AlertEvent.OPENED.value,
            col(Notification.state) != DeliveryState.CANCELLED.value,
            col(Notification.created_at) >= since,
        )
        .order_by(col(Notification.next_attempt_at).desc())
        .limit(1)
    ).first()


def _row(route: _Route, facts: AlertFacts, event: AlertEvent, payload: dict[str, Any],
         now: datetime, due: datetime) -> dict[str, Any]:
    state = DeliveryState.PENDING.value
    if (route.quiet is not None and facts.severity != Severity.CRITICAL.value
            and route.quiet.contains(now)):
        # Quiet hours: kept for the digest sent when they end.
        state, due = DeliveryState.HELD.value, route.quiet.ends_after(now)
    return {
        "delivery_id": str(uuid.uuid4()),
        "route_id": route.rule.id,
        "channel": route.channel,
        "destination": route.destination,
        "alert_id": facts.id,
        "alert_key": facts.key,
        "event": event.value,
        "payload": payload,
        "state": state,
        "attempts": 0,
        "next_attempt_at": due,
        "created_at": now,
    }


def record_changes(
    session: Session,
    alerts: Iterable[AlertFacts],
    event: AlertEvent,
    *,
    now: datetime,
    route_ids: Sequence[int] | None = None,
) -> int:
    """Add the notifications of ``alerts`` after ``event`` to the session; return how many.

    ``route_ids`` (escalation) sends to those routes whatever their filters.
    """
    changed = list(alerts)
    if not changed:
        return 0
    routes = _routes(session)
    if not routes:
        return 0
    places = _places(session, changed)
    rows: list[dict[str, Any]] = []
    cancel: list[tuple[int, int]] = []
    told = (
        {} if event in (AlertEvent.OPENED, AlertEvent.ESCALATED)
        else _told(session, [a.id for a in changed])
    )
    for facts in changed:
        place = places[facts.id]
        payload = alert_payload(facts, event, at=now, areas=place.areas)
        on_duty: set[int] = set()
        if event is AlertEvent.OPENED:
            matching = [r for r in routes if route_matches(
                r.rule, alert_type=facts.type, severity=facts.severity,
                areas=place.areas, points=place.points, tags=place.tags)]
            on_duty = {r.rule.id for r in _on_duty(matching, facts.severity, now)}
        for route in routes:
            if event is AlertEvent.ESCALATED:
                if route_ids is not None and route.rule.id in route_ids:
                    rows.append(_row(route, facts, event, payload, now, now))
                continue
            if event is AlertEvent.OPENED:
                if route.rule.id not in on_duty:
                    continue
                due = now
                last = _last_opening(session, route.rule.id, facts.key, now - FLAP_WINDOW)
                if last is not None:
                    due = max(now, last + FLAP_WINDOW)
                rows.append(_row(route, facts, event, payload, now, due))
                continue
            state = told.get(facts.id, {}).get(route.rule.id)
            if state is None:
                continue
            if state == DeliveryState.PENDING.value and event is AlertEvent.RESOLVED:
                # Not sent yet (flap window, or a backlog): withdraw it instead.
                cancel.append((facts.id, route.rule.id))
                continue
            rows.append(_row(route, facts, event, payload, now, now))
    table: Table = Notification.__table__  # type: ignore[attr-defined]
    for alert_id, route_id in cancel:
        session.execute(
            update(table)
            .where(
                table.c.alert_id == alert_id,
                table.c.route_id == route_id,
                table.c.state == DeliveryState.PENDING.value,
            )
            .values(state=DeliveryState.CANCELLED.value, last_error="resolved before it was sent")
        )
    if rows:
        session.execute(insert(table), rows)
        log.debug("%d notifications queued (%s)", len(rows), event.value)
    return len(rows)

