"""GET /api/v1/machines/{id}/forecast over real HTTP: shape, roles, areas, bounds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlmodel import Session

from backend.app import create_app
from backend.config import Settings
from backend.models import DispenseEvent, Machine, utcnow
from tests.backend.conftest import AuthHeaders, register
from tests.http_server import serve_http

SLOT_KEYS = {"slot", "product", "naloxone", "count", "rate_per_day", "stockout_at",
             "stockout_mean_at", "interval_low_at", "interval_high_at",
             "probability_within_horizon"}


@pytest.fixture
def base_url(migrated_url: str) -> Iterator[str]:
    settings = Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0,
                        restock_solver_seconds=0.2)
    with serve_http(create_app(settings)) as url:
        yield url


def _history(session: Session, machine_id: str, per_day: float, now: datetime) -> None:
    """Give slot 1 of ``machine_id`` four weeks of ``per_day`` dispenses up to ``now``."""
    machine = session.get(Machine, machine_id)
    assert machine is not None
    machine.created_at = now - timedelta(days=30)
    step = 24 / per_day
    for seq in range(int(28 * per_day)):
        session.add(DispenseEvent(machine_id=machine_id, boot_id=1, seq=seq + 1, slot=1,
                                  device_time=now - timedelta(hours=step * (seq + 1)),
                                  product="naloxone-nasal-4mg", result="ok"))
    session.commit()


def test_forecast_route(base_url: str, session: Session, auth_headers: AuthHeaders) -> None:
    register(session, "fa-001", count=4, slots=2, area="north")
    register(session, "fa-002", count=4, area="south")
    now = utcnow()
    _history(session, "fa-001", 10, now)  # slot 1 sold 10 a day; slot 2 never sold
    with httpx.Client(base_url=base_url, timeout=10) as http:
        got = http.get("/api/v1/machines/fa-001/forecast", params={"horizon_hours": 12},
                       headers=auth_headers("outreach"))
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["machine_id"] == "fa-001"
        assert body["horizon_hours"] == 12
        busy, quiet = body["slots"]
        assert set(busy) == SLOT_KEYS
        assert busy["rate_per_day"] == pytest.approx(10, rel=0.15)
        at = {k: datetime.fromisoformat(busy[k]) for k in
              ("interval_low_at", "stockout_at", "interval_high_at")}
        assert at["interval_low_at"] < at["stockout_at"] < at["interval_high_at"]
        # Four at ten a day: about ten hours, the interval within a day or so.
        generated = datetime.fromisoformat(body["generated_at"])
        assert timedelta(hours=4) < at["stockout_at"] - generated < timedelta(hours=20)
        assert busy["probability_within_horizon"] > quiet["probability_within_horizon"]
        assert quiet["rate_per_day"] < 1
        for role in ("admin", "health"):
            assert http.get("/api/v1/machines/fa-001/forecast",
                            headers=auth_headers(role)).status_code == 200
        assert http.get("/api/v1/machines/fa-001/forecast",
                        headers=auth_headers("provisioning")).status_code == 403
        assert http.get("/api/v1/machines/fa-001/forecast").status_code == 401
        # Outside the caller's areas, or not registered: not found.
        south = auth_headers("outreach", areas=["south"])
        assert http.get("/api/v1/machines/fa-001/forecast", headers=south).status_code == 404
        assert http.get("/api/v1/machines/fa-002/forecast", headers=south).status_code == 200
        missing = http.get("/api/v1/machines/nope-9/forecast", headers=auth_headers("admin"))
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        for bad in ("0", "673", "nan", "x"):
            assert http.get("/api/v1/machines/fa-001/forecast", params={"horizon_hours": bad},
                            headers=auth_headers("admin")).status_code == 422


def test_the_plan_makes_a_forecast_stockout_critical(
    base_url: str, session: Session, auth_headers: AuthHeaders
) -> None:
    # Both hold 6 of a par of 10 (threshold 2): below par only, a routine stop,
    # unless the forecast says it runs out before the next shift.
    for machine_id, per_day in (("fp-001", 12.0), ("fp-002", 0.5)):
        register(session, machine_id, count=6, capacity=12, threshold=2)
        _history(session, machine_id, per_day, utcnow())
    with httpx.Client(base_url=base_url, timeout=30) as http:
        got = http.get("/api/v1/restock/plan", headers=auth_headers("outreach"), params={
            "depot": "40.70,-74.01", "shift_start": utcnow().isoformat(), "shift_hours": 6})
    assert got.status_code == 200, got.text
    stops = {s["machine_id"]: s for van in got.json()["vans"] for s in van["stops"]}
    assert stops["fp-001"]["urgency"] == "critical"
    assert any("forecast" in r for r in stops["fp-001"]["reasons"])
    assert stops["fp-002"]["urgency"] == "routine"
