"""Escalation and quiet hours with a digest, on a simulated clock (no sleeps)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from backend import crud
from backend.alerts.rules import AlertSpec, slot_alert_spec
from backend.alerts.store import open_alert, resolve_alerts
from backend.config import Settings
from backend.models import (
    Alert,
    AlertType,
    Notification,
    NotificationRoute,
    Severity,
)
from backend.notify.dispatcher import Dispatcher
from backend.notify.jobs import escalate_due, send_digests
from backend.notify.quiet import QuietHours
from tests.backend.conftest import register
from tests.notify_receiver import webhook_receiver
from tests.waiting import wait_until

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


def _route(session: Session, name: str, **rules: object) -> int:
    route = NotificationRoute(name=name, channel="webhook", target=f"http://127.0.0.1:9/{name}",
                              **rules)
    session.add(route)
    session.commit()
    assert route.id is not None
    return route.id


def _chain(session: Session) -> tuple[int, int, int]:
    """Route a takes empty slots and escalates to b after 10 min, b to c after 10 min."""
    c = _route(session, "c", alert_types=["notification_failed"])
    b = _route(session, "b", alert_types=["notification_failed"], escalate_after_min=10,
               escalate_to_route_id=c)
    a = _route(session, "a", alert_types=["empty_slot"], escalate_after_min=10,
               escalate_to_route_id=b)
    return a, b, c


def _events(session: Session) -> list[tuple[str, int | None]]:
    rows = session.exec(select(Notification).order_by(col(Notification.id))).all()
    return [(n.event, n.route_id) for n in rows]


def _empty(session: Session, at: datetime) -> None:
    open_alert(session, slot_alert_spec(AlertType.EMPTY_SLOT, "m1", 1, "naloxone", 0, 2), now=at)
    session.commit()


def _escalate(engine: Engine, at: datetime) -> int:
    with Session(engine) as session:
        made = escalate_due(session, now=at)
        session.commit()
        return made


def test_an_unacknowledged_critical_alert_climbs_the_chain(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "m1")
        a, b, c = _chain(session)
        _empty(session, T0)
        assert _escalate(engine, T0 + timedelta(minutes=9, seconds=59)) == 0
        assert _escalate(engine, T0 + timedelta(minutes=10)) == 1
        assert _escalate(engine, T0 + timedelta(minutes=11)) == 0  # never twice
        assert _escalate(engine, T0 + timedelta(minutes=19)) == 0  # b's own ten minutes
        assert _escalate(engine, T0 + timedelta(minutes=20)) == 1
        assert _escalate(engine, T0 + timedelta(hours=5)) == 0  # c escalates nowhere
        session.rollback()
        assert _events(session) == [("opened", a), ("escalated", b), ("escalated", c)]
        escalated = session.exec(select(Notification).where(
            Notification.event == "escalated")).first()
        assert escalated is not None
        assert escalated.payload["event"] == "alert.escalated"
        assert escalated.payload["alert"]["subject"] == "m1/slot/1"
        # Resolution reaches everyone who was told (once it was delivered; an
        # unsent one is withdrawn instead, test_notify_outbox.py).
        session.execute(update(Notification).values(state="delivered"))  # type: ignore[arg-type]
        session.commit()
        resolve_alerts(session, AlertType.EMPTY_SLOT, "m1/slot/1",
                       now=T0 + timedelta(hours=6))
        session.commit()
        assert sorted(_events(session)[3:]) == sorted(
            [("resolved", a), ("resolved", b), ("resolved", c)])


def test_acknowledging_stops_the_chain(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "m1")
        a, _b, _c = _chain(session)
        _empty(session, T0)
        alert = session.exec(select(Alert)).one()
        assert alert.id is not None
        crud.acknowledge_alert(session=session, alert_id=alert.id, by="ann")
        session.rollback()  # end the transaction its refresh began (SQLite's write lock)
        assert _escalate(engine, T0 + timedelta(hours=1)) == 0
        session.rollback()
        assert _events(session) == [("opened", a), ("acknowledged", a)]


def test_a_warning_does_not_escalate(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "m1")
        a = _route(session, "a", escalate_after_min=1,
                   escalate_to_route_id=_route(session, "b", alert_types=["x"]))
        open_alert(session, AlertSpec(AlertType.DOOR_OPEN, Severity.WARNING, "m1", "m1", "door"),
                   now=T0)
        session.commit()
        assert _escalate(engine, T0 + timedelta(hours=1)) == 0
        session.rollback()
        assert _events(session) == [("opened", a)]


def _ny(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=NEW_YORK)


def test_quiet_hours_hold_all_but_critical_and_send_one_digest(engine: Engine,
                                                               migrated_url: str) -> None:
    with Session(engine) as session:
        register(session, "m1")
        quiet = _route(session, "night", quiet_start="22:00", quiet_end="07:00",
                       quiet_tz="America/New_York")
        open_alert(session, AlertSpec(AlertType.DOOR_OPEN, Severity.WARNING, "m1", "m1",
                                      "door open"), now=_ny(3, 23))
        _empty(session, _ny(3, 23, 30))  # critical: goes out at once
        resolve_alerts(session, AlertType.DOOR_OPEN, "m1", now=_ny(4, 1))
        session.commit()
        states = [(n.event, n.payload["alert"]["type"], n.state, n.next_attempt_at)
                  for n in session.exec(select(Notification).order_by(col(Notification.id)))]
        morning = _ny(4, 7).astimezone(UTC)
        assert states == [
            ("opened", "door_open", "held", morning),
            ("opened", "empty_slot", "pending", _ny(3, 23, 30).astimezone(UTC)),
            ("resolved", "door_open", "held", morning),
        ]
        session.rollback()
    with Session(engine) as session:
        assert send_digests(session, now=_ny(4, 6, 59)) == 0
        session.commit()
    with webhook_receiver() as hook, Session(engine) as session:
        route = session.get(NotificationRoute, quiet)
        assert route is not None
        route.target = hook.url
        session.add(route)
        session.commit()
        settings = Settings(environment="test", database_url=migrated_url, notify_poll_s=0.02)
        dispatcher = Dispatcher(engine, settings, clock=lambda: _ny(4, 7, 0))
        assert dispatcher.run_jobs() == (0, 1)
        assert dispatcher.run_jobs() == (0, 0)  # the held rows went into the digest
        dispatcher.start()
        try:
            wait_until(lambda: any(json.loads(r.body)["event"] == "digest"
                                   for r in hook.delivered()), what="the digest")
        finally:
            dispatcher.stop()
        digest = next(json.loads(r.body) for r in hook.delivered()
                      if json.loads(r.body)["event"] == "digest")
        assert [(i["event"], i["alert"]["type"]) for i in digest["items"]] == [
            ("opened", "door_open"), ("resolved", "door_open")]
        session.rollback()
        held = session.exec(select(Notification.state).where(
            Notification.event != "digest")).all()
        assert sorted(held) == ["delivered", "digested", "digested"]


@pytest.mark.parametrize(("start", "end", "local", "inside"), [
    ("22:00", "07:00", (23, 0), True),
    ("22:00", "07:00", (6, 59), True),
    ("22:00", "07:00", (7, 0), False),
    ("22:00", "07:00", (12, 0), False),
    ("12:00", "13:00", (12, 30), True),
    ("12:00", "13:00", (13, 30), False),
])
def test_quiet_hours_window(start: str, end: str, local: tuple[int, int], inside: bool) -> None:
    quiet = QuietHours.of(start, end, "America/New_York")
    assert quiet is not None
    assert quiet.contains(_ny(3, *local)) is inside


def test_quiet_hours_end_at_the_next_local_end() -> None:
    quiet = QuietHours.of("22:00", "07:00", "America/New_York")
    assert quiet is not None
    assert quiet.ends_after(_ny(3, 23)) == _ny(4, 7)
    assert quiet.ends_after(_ny(4, 2)) == _ny(4, 7)
    # Across the spring change of clocks, 07:00 local is still 07:00 local.
    assert quiet.ends_after(datetime(2027, 3, 14, 1, tzinfo=NEW_YORK)) == datetime(
        2027, 3, 14, 7, tzinfo=NEW_YORK)
