"""The predicted_stockout alert on SQLite and PostgreSQL: opens, holds, resolves, never flaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from backend import crud
from backend.forecast.settings import ForecastSettings
from backend.forecast.store import outlook_of, run_forecast_tick
from backend.models import Alert, AlertType, DispenseEvent, Machine, Slot

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
WIDE = ForecastSettings(open_probability=0.5, resolve_probability=0.001)


def _machine(engine: Engine, machine_id: str, *, count: int, per_day: float,
             product: str = "naloxone-nasal-4mg", capacity: int = 40) -> None:
    """Register a one-slot machine with ``per_day`` dispenses for the last 28 days."""
    with Session(engine) as s:
        crud.register_machine(
            session=s, machine_id=machine_id, name=machine_id, lat=40.0, lon=-75.0,
            actor="test", slots=[{"slot": 1, "product": product, "capacity": capacity,
                                  "count": count}])
        machine = s.get(Machine, machine_id)
        assert machine is not None
        machine.created_at = NOW - timedelta(days=30)
        step = timedelta(hours=24 / per_day)
        at, seq = NOW - timedelta(days=28), 0
        while at < NOW:
            seq += 1
            s.add(DispenseEvent(machine_id=machine_id, boot_id=1, seq=seq, device_time=at,
                                slot=1, product=product, result="ok"))
            at += step
        s.commit()


def _set_count(engine: Engine, machine_id: str, count: int) -> None:
    with Session(engine) as s:
        slot = s.get(Slot, (machine_id, 1))
        assert slot is not None
        slot.count = count
        s.add(slot)
        s.commit()


def _alerts(engine: Engine, machine_id: str) -> list[Alert]:
    with Session(engine) as s:
        return list(s.exec(select(Alert).where(
            Alert.type == AlertType.PREDICTED_STOCKOUT.value, Alert.machine_id == machine_id
        ).order_by(col(Alert.id))).all())


def test_opens_once_resolves_on_a_visit_or_recovery_and_never_flaps(engine: Engine) -> None:
    _machine(engine, "fc-001", count=3, per_day=12)
    _machine(engine, "fc-002", count=3, per_day=12)
    report = run_forecast_tick(engine, WIDE, now=NOW)
    assert (report.slots, report.opened, report.resolved) == (2, 2, 0)
    [alert] = _alerts(engine, "fc-001")
    assert alert.subject == "fc-001/slot/1"
    assert alert.status == "open"
    assert alert.details["probability"] > 0.9
    assert alert.details["count"] == 3
    low, high = alert.details["interval_hours"]
    assert 0 < low < alert.details["median_hours"] < high < 24
    # The next tick finds both open and leaves them be.
    assert run_forecast_tick(engine, WIDE, now=NOW + timedelta(minutes=1)).opened == 0
    # fc-001: a visit that loads 20 (still a few % chance of running out in a day)
    # resolves it. fc-002: the count wobbles (controller reports, not a visit)
    # between 3 and 20: the chance crosses the opening threshold each time but
    # never the resolving one, so its alert stays open, once.
    with Session(engine) as s:
        crud.record_restock_visit(session=s, machine_id="fc-001", counts={1: 20},
                                  actor="test", visited_at=NOW + timedelta(minutes=2))
    resolved = 0
    for minute, count in enumerate([20, 3, 20, 3, 20], start=3):
        _set_count(engine, "fc-002", count)
        report = run_forecast_tick(engine, WIDE, now=NOW + timedelta(minutes=minute))
        assert report.opened == 0
        resolved += report.resolved
    assert resolved == 1
    [alert] = _alerts(engine, "fc-001")
    assert alert.status == "resolved"
    assert alert.resolved_by == "system"
    assert alert.details["resolved_because"] == "visit"
    [alert] = _alerts(engine, "fc-002")
    assert alert.status == "open"
    # Plenty of stock: the forecast recovers and the alert resolves once.
    _set_count(engine, "fc-002", 40)
    assert run_forecast_tick(engine, WIDE, now=NOW + timedelta(minutes=9)).resolved == 1
    [alert] = _alerts(engine, "fc-002")
    assert alert.details["resolved_because"] == "recovered"


def test_what_opens_nothing_and_what_hands_over(engine: Engine) -> None:
    _machine(engine, "fc-003", count=8, per_day=0.5)
    _machine(engine, "fc-004", count=2, per_day=20, product="wound-care-kit")
    _machine(engine, "fc-005", count=0, per_day=20)
    _machine(engine, "fc-006", count=6, per_day=12)
    # A visit planned within the hour is the deadline: little chance before it.
    soon = {"fc-006": NOW + timedelta(hours=1)}
    report = run_forecast_tick(engine, ForecastSettings(), now=NOW, next_visits=soon)
    assert (report.slots, report.opened) == (3, 0)
    # Without it, the 24 h horizon: fc-006 will most likely run out.
    assert run_forecast_tick(engine, ForecastSettings(), now=NOW).opened == 1
    assert [len(_alerts(engine, m)) for m in ("fc-003", "fc-004", "fc-005")] == [0, 0, 0]
    # Running out hands over to the empty_slot alert.
    _set_count(engine, "fc-006", 0)
    assert run_forecast_tick(engine, ForecastSettings(), now=NOW + timedelta(hours=1)
                             ).resolved == 1
    assert _alerts(engine, "fc-006")[0].details["resolved_because"] == "ran_out"


def test_the_tick_runs_on_the_datas_clock(engine: Engine) -> None:
    """As in the demo: dispenses stamped in another time; "now" is the newest of them."""
    _machine(engine, "fc-008", count=2, per_day=12)
    assert run_forecast_tick(engine, ForecastSettings(clock="data")).opened == 1
    [alert] = _alerts(engine, "fc-008")
    assert alert.opened_at > NOW - timedelta(hours=3)
    assert alert.opened_at < NOW


def test_hours_a_slot_stood_empty_do_not_dilute_its_rate(engine: Engine) -> None:
    _machine(engine, "fc-009", count=5, per_day=2)

    def rate() -> float:
        with Session(engine) as s:
            machine = s.get(Machine, "fc-009")
            assert machine is not None
            [item] = outlook_of(s, [machine], now=NOW, deadline_h={"fc-009": 24},
                                settings=ForecastSettings())["fc-009"]
            return item.forecast.rate_per_day

    before = rate()
    assert before == pytest.approx(2, rel=0.15)
    with Session(engine) as s:
        s.add(Alert(type=AlertType.EMPTY_SLOT.value, severity="critical", subject="fc-009/slot/1",
                    machine_id="fc-009", message="empty", status="resolved",
                    opened_at=NOW - timedelta(days=9), resolved_at=NOW - timedelta(days=2)))
        s.commit()
    # A week of the last four weeks' (discounted) exposure goes: the rate rises by
    # about the share it carried, the dispenses being the same.
    assert rate() > 1.25 * before


def _issue(engine: Engine, arrivals: dict[str, datetime], *, start: datetime,
           hours: float = 8) -> None:
    """Issue a one-van plan stopping at each machine at its arrival."""
    from backend.restock.model import Plan, PlannedStop, Point, VanRoute
    from backend.restock.schedule import issue_plan

    end = start + timedelta(hours=hours)
    stops = [PlannedStop(order=i, machine_id=m, name=m, lat=40.0, lon=-75.0,
                         urgency="critical", reasons=[], arrival=at, departure=at,
                         service_minutes=8, items=1, load=[])
             for i, (m, at) in enumerate(sorted(arrivals.items(), key=lambda x: x[1]), 1)]
    van = VanRoute(van=1, stops=stops, load_list=[], items=len(stops), distance_km=1.0,
                   drive_minutes=1.0, service_minutes=1.0, departure=start, return_time=end)
    plan = Plan(depot=Point(40.0, -75.0), shift_start=start, shift_end=end, van_capacity=300,
                distance_source="test", vans=[van], left_out=[], distance_km=1.0,
                served=len(stops), solver_status="test", solver_seconds=0.0)
    with Session(engine) as s:
        issue_plan(s, plan, by="test")
        s.commit()


def test_the_deadline_is_the_next_visit_of_an_issued_plan(engine: Engine) -> None:
    # fc-010 runs out in about half a day, fc-011 in about a day and a half.
    _machine(engine, "fc-010", count=6, per_day=12)
    _machine(engine, "fc-011", count=18, per_day=12)
    # The van comes to fc-010 within the hour and to fc-011 only in three days.
    _issue(engine, {"fc-010": NOW + timedelta(hours=1), "fc-011": NOW + timedelta(days=3)},
           start=NOW)
    report = run_forecast_tick(engine, ForecastSettings(), now=NOW)
    assert report.opened == 1
    [alert] = _alerts(engine, "fc-011")  # beyond the 24 h horizon, before the van comes
    assert alert.details["deadline"] == (NOW + timedelta(days=3)).isoformat()
    assert _alerts(engine, "fc-010") == []
    # A new plan for the same shift that leaves fc-010 out supersedes its visit:
    # the 24 h horizon is fc-010's deadline again, and it will likely run out by then.
    _issue(engine, {"fc-011": NOW + timedelta(hours=2)}, start=NOW)
    report = run_forecast_tick(engine, ForecastSettings(), now=NOW + timedelta(minutes=1))
    assert len(_alerts(engine, "fc-010")) == 1
    # fc-011's van now comes within two hours: its alert resolves (it recovered).
    [alert] = _alerts(engine, "fc-011")
    assert alert.status == "resolved"
