"""The outbox: an alert change and its notifications are written together, to matching routes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from backend import crud
from backend.alerts.rules import AlertSpec, slot_alert_spec
from backend.alerts.store import open_alert, resolve_alerts
from backend.models import (
    Alert,
    AlertType,
    DeliveryState,
    Notification,
    NotificationRoute,
    Severity,
    utcnow,
)
from backend.notify.outbox import FLAP_WINDOW
from tests.backend.conftest import register

EMPTY = AlertType.EMPTY_SLOT


def _route(session: Session, name: str, **rules: object) -> int:
    route = NotificationRoute(name=name, channel="webhook",
                              target=f"http://127.0.0.1:9/{name}?token=secret-in-url",
                              secret="k", **rules)
    session.add(route)
    session.commit()
    assert route.id is not None
    return route.id


def _notes(session: Session) -> list[Notification]:
    return list(session.exec(select(Notification).order_by(col(Notification.id))).all())


def _empty(machine: str) -> AlertSpec:
    return slot_alert_spec(EMPTY, machine, 1, "naloxone", 0, 2)


def test_opening_and_its_notifications_commit_or_roll_back_together(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "m1")
        _route(session, "all")
        assert open_alert(session, _empty("m1"))
        session.rollback()
        assert session.exec(select(Alert)).all() == []
        assert _notes(session) == []
        assert open_alert(session, _empty("m1"))
        session.commit()
        [note] = _notes(session)
        alert = session.exec(select(Alert)).one()
        assert (note.alert_id, note.event, note.state) == (alert.id, "opened", "pending")
        assert note.payload["alert"]["type"] == "empty_slot"
        assert note.payload["alert"]["severity"] == "critical"
        assert note.payload["event"] == "alert.opened"
        # What the delivery list shows of the target: no path, no query, no token.
        assert note.destination == "http://127.0.0.1:9"
        assert len(note.delivery_id) == 36


def test_routes_filter_by_type_severity_and_area(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "north-1", area="north")
        register(session, "south-1", area="south")
        ids = {
            "empty": _route(session, "empty", alert_types=["empty_slot"]),
            "critical": _route(session, "critical", min_severity="critical"),
            "north": _route(session, "north", areas=["north"]),
            "off": _route(session, "off", enabled=False),
        }
        open_alert(session, _empty("south-1"))
        open_alert(session, AlertSpec(AlertType.DOOR_OPEN, Severity.WARNING, "north-1",
                                      "north-1", "door open"))
        session.commit()
        got = {(n.payload["alert"]["subject"], n.route_id) for n in _notes(session)}
        assert got == {
            ("south-1/slot/1", ids["empty"]),
            ("south-1/slot/1", ids["critical"]),
            ("north-1", ids["north"]),
        }
        door = next(n for n in _notes(session) if n.route_id == ids["north"])
        assert door.payload["alert"]["areas"] == ["north"]


def test_acknowledge_and_resolve_go_to_the_routes_told_it_opened(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "m1", area="north")
        told = _route(session, "told")
        open_alert(session, _empty("m1"))
        session.commit()
        # A route added after the opening hears nothing of this alert.
        _route(session, "late")
        alert = session.exec(select(Alert)).one()
        assert alert.id is not None
        for note in _notes(session):
            note.state = DeliveryState.DELIVERED.value
            session.add(note)
        session.commit()
        crud.acknowledge_alert(session=session, alert_id=alert.id, by="ann")
        crud.resolve_alert(session=session, alert_id=alert.id, by="bob")
        events = [(n.event, n.route_id) for n in _notes(session)]
        assert events == [("opened", told), ("acknowledged", told), ("resolved", told)]
        ack = _notes(session)[1].payload["alert"]
        assert (ack["status"], ack["acknowledged_by"]) == ("acknowledged", "ann")


def test_resolution_in_bulk_is_notified(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "m1")
        _route(session, "all")
        open_alert(session, _empty("m1"))
        session.commit()
        session.exec(select(Notification)).one().state = DeliveryState.DELIVERED.value
        session.commit()
        assert resolve_alerts(session, EMPTY, "m1/slot/1", by="system") == 1
        session.commit()
        resolved = _notes(session)[-1]
        assert resolved.event == "resolved"
        assert resolved.payload["alert"]["resolved_by"] == "system"


def test_a_flapping_alert_makes_one_notification_per_window(engine: Engine) -> None:
    start = utcnow()
    with Session(engine) as session:
        register(session, "m1")
        _route(session, "all")
        open_alert(session, _empty("m1"), now=start)
        session.commit()
        first = session.exec(select(Notification)).one()
        first.state = DeliveryState.DELIVERED.value
        session.commit()
        resolve_alerts(session, EMPTY, "m1/slot/1", now=start + timedelta(seconds=1))
        for n in range(2, 12):
            at = start + timedelta(seconds=n)
            open_alert(session, _empty("m1"), now=at)
            resolve_alerts(session, EMPTY, "m1/slot/1", now=at + timedelta(milliseconds=500))
            session.commit()
        sent = [(n.event, n.state) for n in _notes(session)
                if n.state != DeliveryState.CANCELLED.value]
        assert sent == [("opened", "delivered"), ("resolved", "pending")]
        # Opened once more and left open: it is told, at the end of the window.
        last = start + timedelta(seconds=20)
        open_alert(session, _empty("m1"), now=last)
        session.commit()
        pending = _notes(session)[-1]
        assert (pending.event, pending.state) == ("opened", "pending")
        assert pending.next_attempt_at == start + FLAP_WINDOW
