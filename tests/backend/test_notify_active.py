"""Time-of-day routing: a route takes new alerts only inside its window (simulated clock)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from backend.alerts.rules import AlertSpec, slot_alert_spec
from backend.alerts.store import open_alert
from backend.models import AlertType, Notification, NotificationRoute, Severity
from backend.notify.active import ActiveHours
from tests.backend.conftest import register

NEW_YORK = ZoneInfo("America/New_York")


def _ny(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=NEW_YORK)


def _route(session: Session, name: str, **rules: object) -> int:
    route = NotificationRoute(name=name, channel="webhook", target=f"http://127.0.0.1:9/{name}",
                              quiet_tz="America/New_York", **rules)
    session.add(route)
    session.commit()
    assert route.id is not None
    return route.id


def _sent_to(session: Session) -> set[int | None]:
    return set(session.exec(select(Notification.route_id).order_by(col(Notification.id))).all())


@pytest.mark.parametrize(("at", "expected"), [
    (_ny(12, 3, 12), "day"),    # Friday noon
    (_ny(12, 3, 23), "night"),  # Friday night
    (_ny(12, 4, 3), "night"),   # Saturday 03:00: Friday's night shift
])
def test_an_alert_goes_to_the_team_on_duty(engine: Engine, at: datetime, expected: str) -> None:
    with Session(engine) as session:
        register(session, "m1")
        ids = {"day": _route(session, "day", active_from="08:00", active_until="20:00"),
               "night": _route(session, "night", active_from="20:00", active_until="08:00")}
        open_alert(session, AlertSpec(AlertType.DOOR_OPEN, Severity.WARNING, "m1", "m1", "door"),
                   now=at.astimezone(UTC))
        session.commit()
        assert _sent_to(session) == {ids[expected]}


def test_outside_every_window_a_warning_is_dropped_but_a_critical_alert_is_not(
        engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "m1")
        weekdays = _route(session, "weekdays", active_from="09:00", active_until="17:00",
                          active_days=[0, 1, 2, 3, 4])
        _route(session, "other-types", alert_types=["offline"])
        sunday = _ny(12, 5, 12).astimezone(UTC)
        open_alert(session, AlertSpec(AlertType.DOOR_OPEN, Severity.WARNING, "m1", "m1", "door"),
                   now=sunday)
        session.commit()
        assert _sent_to(session) == set()
        open_alert(session, slot_alert_spec(AlertType.EMPTY_SLOT, "m1", 1, "naloxone", 0, 2),
                   now=sunday)
        session.commit()
        # Nobody matching is on duty: the critical alert reaches every matching route.
        assert _sent_to(session) == {weekdays}


def test_active_hours_cross_midnight_and_respect_weekdays() -> None:
    shift = ActiveHours.of("22:00", "06:00", [4], "America/New_York")  # Friday nights
    assert shift is not None
    assert shift.contains(_ny(12, 3, 22))
    assert shift.contains(_ny(12, 4, 5, 59))
    assert not shift.contains(_ny(12, 4, 6))
    assert not shift.contains(_ny(12, 4, 22))  # Saturday night
    assert not shift.contains(_ny(12, 3, 5))   # Friday morning is Thursday's shift
    assert ActiveHours.of(None, None, None, None) is None
    days_only = ActiveHours.of(None, None, [5, 6], None)
    assert days_only is not None
    assert days_only.contains(datetime(2027, 12, 4, 3, tzinfo=UTC))


CLOCKS = st.times().map(lambda t: t.replace(second=0, microsecond=0))
# Around 2027's spring-forward (14 March) and fall-back (7 November) in New York.
MOMENTS = st.datetimes(
    min_value=datetime(2027, 3, 12), max_value=datetime(2027, 3, 17), timezones=st.just(UTC),
) | st.datetimes(
    min_value=datetime(2027, 11, 5), max_value=datetime(2027, 11, 10), timezones=st.just(UTC),
)


@given(start=CLOCKS, until=CLOCKS, moment=MOMENTS,
       days=st.frozensets(st.integers(0, 6)))
def test_active_hours_agree_with_the_local_wall_clock(
        start: time, until: time, moment: datetime, days: frozenset[int]) -> None:
    hours = ActiveHours(start, until, days, NEW_YORK)
    local = moment.astimezone(NEW_YORK)
    clock, day = local.time().replace(tzinfo=None), local.date()
    if start == until:
        inside = True
    elif start < until:
        inside = start <= clock < until
    else:
        inside = clock >= start or clock < until
        if clock < until:
            day -= timedelta(days=1)  # the tail of the previous evening's window
    assert hours.contains(moment) is (inside and (not days or day.weekday() in days))
    # Whole days and the complement: a window and its opposite cover every moment once.
    if start != until and not days:
        opposite = ActiveHours(until, start, days, NEW_YORK)
        assert hours.contains(moment) != opposite.contains(moment)
