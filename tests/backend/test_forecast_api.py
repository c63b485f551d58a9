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
    settings = Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)
    with serve_http(create_app(settings)) as url:
        yield url


def test_forecast_route(base_url: str, session: Session, auth_headers: AuthHeaders) -> None:
    register(session, "fa-001", count=4, slots=2, area="north")
    register(session, "fa-002", count=4, area="south")
    now = utcnow()
    machine = session.get(Machine, "fa-001")
    assert machine is not None
    machine.created_at = now - timedelta(days=30)
    # Slot 1 sold 10 a day for four weeks; slot 2 never sold.
    for seq in range(280):
        session.add(DispenseEvent(machine_id="fa-001", boot_id=1, seq=seq + 1, slot=1,
                                  device_time=now - timedelta(hours=2.4 * (seq + 1)),
                                  product="naloxone-nasal-4mg", result="ok"))
    session.commit()
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
