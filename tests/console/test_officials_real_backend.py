"""The officials' pages and client calls against the real backend (SQLite, uvicorn, HTTP).

The in-memory API of the other page tests restates the contract; this checks
that the console's models read what the backend really serves (aliases such
as ``from``, nulls where counts are suppressed) and that the pages draw from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from backend import crud
from backend.app import create_app
from backend.areas.features import parse_feature_collection
from backend.areas.store import replace_areas
from backend.auth.tokens import create_token
from backend.config import Settings
from backend.db import make_engine, migrate, session_scope
from backend.models import Alert, DispenseEvent, TemperatureReading
from backend.models.types import utcnow
from console import session
from console.client import ApiClient
from tests.http_server import serve_http

APP = str(Path(__file__).resolve().parents[2] / "console" / "app.py")
ZONE = ZoneInfo("America/New_York")
HTTP_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 90


@dataclass(frozen=True)
class Served:
    url: str
    tokens: dict[str, str]
    alert_id: int
    today: dt.date


def _square(name: str, lat0: float) -> dict[str, Any]:
    ring = [[-75.2, lat0], [-75.0, lat0], [-75.0, lat0 + 0.1], [-75.2, lat0 + 0.1],
            [-75.2, lat0]]
    return {"type": "Feature", "properties": {"name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """Two machines in two areas, 8 weeks of dispenses to today, a cluster, temperatures."""
    url = f"sqlite:///{tmp_path / 'officials.db'}"
    migrate(url)
    engine = make_engine(url)
    today = utcnow().astimezone(ZONE).date()
    with session_scope(engine) as db:
        for machine_id, lat in (("m-north", 40.05), ("m-south", 39.95)):
            crud.register_machine(session=db, actor="test", machine_id=machine_id,
                                  name=machine_id, lat=lat, lon=-75.1, site="test",
                                  slots=[{"slot": 1, "product": "naloxone-nasal-4mg",
                                          "capacity": 10, "count": 6}])
        replace_areas(db, parse_feature_collection({"type": "FeatureCollection", "features": [
            _square("North", 40.0), _square("South", 39.9)]}), actor="test", source="test")
        rows = []
        for n in range(56):
            day = today - dt.timedelta(days=n)
            for machine_id, per_day in (("m-north", 3), ("m-south", 1 if n % 7 == 0 else 0)):
                for i in range(per_day):
                    rows.append({"machine_id": machine_id, "boot_id": 1, "seq": len(rows) + 1,
                                 "slot": 1, "device_time": dt.datetime.combine(
                                     day, dt.time(1, i), ZONE),
                                 "received_at": utcnow(), "product": "naloxone-nasal-4mg",
                                 "result": "ok", "drop_confirmed": True, "source": "nxlink"})
        db.execute(insert(DispenseEvent), rows)
        for hours, celsius in ((30, 21.0), (6, 27.0)):
            db.add(TemperatureReading(machine_id="m-north",
                                      at=utcnow() - dt.timedelta(hours=hours), celsius=celsius))
        alert = Alert(type="overdose_hotspot", severity="critical", subject="area:m-north",
                      message="cluster", details={
                          "detector": "space-time-permutation", "centre_machine": "m-north",
                          "lat": 40.05, "lon": -75.1, "radius_km": 0.0,
                          "machines": ["m-north"], "areas": ["North"],
                          "start": (today - dt.timedelta(days=2)).isoformat(),
                          "end": today.isoformat(), "observed": 4, "expected": 1.2,
                          "p_value": 1 / 270, "recurrence_interval_days": 270.0,
                          "statistic": 4.0})
        db.add(alert)
        db.flush()
        assert alert.id is not None
        alert_id = alert.id
        tokens = {role: create_token(db, name=f"test-{role}", role=role)
                  for role in ("admin", "health")}
    app = create_app(Settings(database_url=url, stats_timezone="America/New_York"),
                     engine=engine)
    try:
        with serve_http(app) as base_url:
            yield Served(base_url, tokens, alert_id, today)
    finally:
        engine.dispose()


def test_the_client_reads_the_officials_routes_as_health(served: Served) -> None:
    with ApiClient(served.url, token=served.tokens["health"], timeout_s=HTTP_TIMEOUT_S) as api:
        feature = api.hotspots(include_resolved=True).features[0]
        assert feature.properties["observed"] is None  # 4 is under k
        assert feature.properties["explanation"] == (
            "A cluster this unusual would arise by chance about once in 270 days.")
        series = api.hotspot_series(served.alert_id)
        assert series.days[-1] == served.today
        assert series.observed[-1] is None  # 3 a day: under k
        assert series.small[-1]
        assert sum(series.expected) > 0
        stats = api.dispense_stats(first=served.today - dt.timedelta(days=27),
                                   last=served.today, bucket="week", group="area")
        assert stats.from_ == served.today - dt.timedelta(days=27)
        assert stats.suppression_k == 5
        south = next(s for s in stats.series if s.key == "South")
        assert None in south.counts
        assert all(c in (None, 0) for c in south.counts)  # 1 a week: <5 (or an empty week)
        assert {f.properties["name"] for f in api.areas().features} == {"North", "South"}
        temps = api.temperatures("m-north", hours=48)
        assert [p.celsius for p in temps.data] == [21.0, 27.0]
        assert (temps.safe_min_c, temps.safe_max_c) == (15.0, 25.0)
        assert api.stock_history("m-north", days=7).data[0].count >= 6
        assert api.discrepancies("m-north").count == 0


def _console_as(served: Served, role: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setattr(session, "make_client", lambda t: ApiClient(served.url, token=t,
                                                                   timeout_s=HTTP_TIMEOUT_S))
    monkeypatch.setattr(session, "preset_token", lambda: served.tokens[role])
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.run()
    assert not at.exception, at.exception
    return at


def test_hotspot_and_trends_pages_draw_from_the_real_api(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _console_as(served, "health", monkeypatch)
    at.switch_page("views/hotspots.py").run()
    assert not at.exception, at.exception
    assert at.info[0].value.startswith("A cluster this unusual would arise by chance")
    assert {m.label: m.value for m in at.metric}["Observed"] == "<5"
    assert len(at.get("vega_lite_chart")) == 1
    assert not at.error
    at.switch_page("views/trends.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Trends"
    assert len(at.get("vega_lite_chart")) >= 1
    assert any("nothing to compare with yet" in c.value for c in at.caption)
    assert not at.error
