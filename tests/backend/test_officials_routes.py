"""Routes of the officials' pages on SQLite and PostgreSQL: a hotspot's series and plain words,
suppressed counts, named areas, and a machine's temperature and stock history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine, insert
from sqlmodel import Session

from backend.app import create_app
from backend.areas.features import parse_feature_collection
from backend.areas.store import replace_areas
from backend.config import Settings
from backend.models import (
    Alert,
    DispenseEvent,
    Machine,
    MachineEvent,
    RestockVisit,
    TemperatureReading,
)
from backend.models.types import utcnow
from tests.backend.conftest import AuthHeaders, register
from tests.http_server import serve_http

ZONE = ZoneInfo("America/New_York")
NALOXONE = "naloxone-nasal-4mg"
END = dt.date(2026, 3, 31)
STUDY_DAYS = 56


def _square(name: str, lat0: float, lat1: float) -> dict[str, Any]:
    ring = [[-74.1, lat0], [-73.9, lat0], [-73.9, lat1], [-74.1, lat1], [-74.1, lat0]]
    return {"type": "Feature", "properties": {"name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


AREAS = {"type": "FeatureCollection",
         "features": [_square("North", 40.7, 40.8), _square("South", 40.6, 40.7)]}


def _dispenses(rows: list[dict[str, Any]], machine_id: str, day: dt.date, n: int) -> None:
    for i in range(n):
        rows.append({"machine_id": machine_id, "boot_id": 1, "seq": len(rows) + 1, "slot": 1,
                     "device_time": dt.datetime.combine(day, dt.time(12, i), ZONE),
                     "received_at": utcnow(), "product": NALOXONE, "result": "ok",
                     "drop_confirmed": True, "source": "nxlink"})


@pytest.fixture
def alert_id(engine: Engine) -> int:
    """Three machines; m-a had 1 a day then 3 on each of the last 3 days; one hotspot alert."""
    with Session(engine) as session:
        register(session, "m-a")
        register(session, "m-b")
        register(session, "m-c")
        for machine_id, lat in (("m-a", 40.75), ("m-b", 40.74), ("m-c", 40.65)):
            machine = session.get(Machine, machine_id)
            assert machine is not None
            machine.lat, machine.lon = lat, -74.0
            session.add(machine)
        session.commit()
        replace_areas(session, parse_feature_collection(AREAS), actor="test", source="test")
        session.commit()
        rows: list[dict[str, Any]] = []
        for n in range(STUDY_DAYS):
            day = END - dt.timedelta(days=n)
            _dispenses(rows, "m-a", day, 3 if n < 3 else 1)
            _dispenses(rows, "m-b", day, 2)
            _dispenses(rows, "m-c", day, 6)
        session.execute(insert(DispenseEvent), rows)
        alert = Alert(type="overdose_hotspot", severity="warning", subject="area:m-a",
                      message="Naloxone dispense cluster around m-a: 9 observed, 3.3 expected",
                      details={"detector": "space-time-permutation", "centre_machine": "m-a",
                               "lat": 40.75, "lon": -74.0, "radius_km": 0.0,
                               "machines": ["m-a"], "areas": ["North"],
                               "start": "2026-03-29", "end": "2026-03-31", "observed": 9,
                               "expected": 3.3, "p_value": 0.004,
                               "recurrence_interval_days": 250.0, "statistic": 4.1})
        small = Alert(type="overdose_hotspot", severity="warning", subject="area:m-b",
                      message="Naloxone dispense cluster around m-b: 4 observed, 0.5 expected",
                      details={"detector": "space-time-permutation", "centre_machine": "m-b",
                               "lat": 40.74, "lon": -74.0, "radius_km": 0.0,
                               "machines": ["m-b"], "areas": ["North"], "start": "2026-03-31",
                               "end": "2026-03-31", "observed": 4, "expected": 0.5,
                               "p_value": 0.001, "recurrence_interval_days": 1000.0,
                               "statistic": 3.0})
        session.add(alert)
        session.add(small)
        session.commit()
        assert alert.id is not None
        return alert.id


@pytest.fixture
def base_url(migrated_url: str, alert_id: int) -> Iterator[str]:
    settings = Settings(environment="test", database_url=migrated_url,
                        stats_timezone="America/New_York")
    with serve_http(create_app(settings)) as url:
        yield url


def _get(base_url: str, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(f"{base_url}/api/v1{path}", params=params, headers=headers, timeout=20)


def test_hotspots_say_how_rare_and_hide_small_counts_but_from_admin(
    base_url: str, alert_id: int, auth_headers: AuthHeaders
) -> None:
    health = _get(base_url, "/hotspots", auth_headers("health")).json()
    props = {f["properties"]["centre_machine"]: f["properties"] for f in health["features"]}
    assert props["m-a"]["observed"] == 9
    assert props["m-a"]["explanation"] == (
        "A cluster this unusual would arise by chance about once in 250 days.")
    assert props["m-a"]["summary"].startswith("9 naloxone dispenses at 1 machine (North) from "
                                              "2026-03-29 to 2026-03-31 (3 days)")
    # 4 is under k = 5: neither the count nor the message that states it reaches health.
    assert props["m-b"]["observed"] is None
    assert props["m-b"]["observed_small"] is True
    assert "4" not in props["m-b"]["message"]
    assert props["m-b"]["message"].startswith("<5 naloxone dispenses")
    assert "less often than once in 1,000 days" in props["m-b"]["explanation"]
    admin = _get(base_url, "/hotspots", auth_headers("admin")).json()
    raw = {f["properties"]["centre_machine"]: f["properties"] for f in admin["features"]}
    assert raw["m-b"]["observed"] == 4
    assert raw["m-b"]["suppression_k"] is None
    # The alert list says the same: no count under k in the message or the details.
    alerts = _get(base_url, "/alerts", auth_headers("health"), type="overdose_hotspot").json()
    by_subject = {a["subject"]: a for a in alerts["data"]}
    assert by_subject["area:m-b"]["details"]["observed"] is None
    assert by_subject["area:m-b"]["message"].startswith("<5 naloxone dispenses")
    assert by_subject["area:m-a"]["message"].startswith("Naloxone dispense cluster")
    acked = httpx.post(f"{base_url}/api/v1/alerts/{by_subject['area:m-b']['id']}/acknowledge",
                       headers=auth_headers("health"), json={}, timeout=20).json()
    assert acked["details"]["observed"] is None
    raw_alerts = _get(base_url, "/alerts", auth_headers("admin"), type="overdose_hotspot").json()
    assert {a["subject"]: a["details"]["observed"] for a in raw_alerts["data"]}["area:m-b"] == 4


def test_hotspot_series_counts_the_cluster_against_the_scan_expectation(
    base_url: str, alert_id: int, auth_headers: AuthHeaders
) -> None:
    body = _get(base_url, f"/hotspots/{alert_id}/series", auth_headers("admin")).json()
    assert len(body["days"]) == STUDY_DAYS
    assert body["days"][-1] == "2026-03-31"
    assert body["window_start"] == "2026-03-29"
    assert body["observed"][-3:] == [3, 3, 3]
    assert body["observed"][0] == 1
    assert body["total"] == 53 + 9
    # N_A x N_d / N: m-a has 62 of the 62 + 112 + 336 = 510 dispenses; the city's day is 11.
    assert body["expected"][-1] == pytest.approx(62 * 11 / 510, abs=1e-3)
    assert body["expected"][0] == pytest.approx(62 * 9 / 510, abs=1e-3)
    assert "about once in 250 days" in body["explanation"]

    health = _get(base_url, f"/hotspots/{alert_id}/series", auth_headers("health")).json()
    assert health["suppression_k"] == 5
    assert all(v is None for v in health["observed"])  # every day is 1 or 3: under 5
    assert all(health["small"])
    assert health["total"] == 62
    assert health["expected"] == body["expected"]

    missing = _get(base_url, "/hotspots/999999/series", auth_headers("admin"))
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert _get(base_url, f"/hotspots/{alert_id}/series",
                auth_headers("outreach")).status_code == 403
    # A token limited to South does not see a cluster in North.
    assert _get(base_url, f"/hotspots/{alert_id}/series",
                auth_headers("health", areas=["South"])).status_code == 404


def _areas_are_polygons_by_name_scoped_to_the_token(
    base_url: str, auth_headers: AuthHeaders
) -> None:
    answer = _get(base_url, "/areas", auth_headers("outreach"))
    assert answer.headers["content-type"].startswith("application/geo+json")
    names = [f["properties"]["name"] for f in answer.json()["features"]]
    assert names == ["North", "South"]
    assert answer.json()["features"][0]["geometry"]["type"] == "Polygon"
    south = _get(base_url, "/areas", auth_headers("health", areas=["South"])).json()
    assert [f["properties"]["name"] for f in south["features"]] == ["South"]
    assert _get(base_url, "/areas", auth_headers("provisioning")).status_code == 403


def test_areas_and_temperature_history_with_the_safe_band_and_bounds(
    base_url: str, engine: Engine, auth_headers: AuthHeaders
) -> None:
    _areas_are_polygons_by_name_scoped_to_the_token(base_url, auth_headers)
    now = utcnow()
    with Session(engine) as session:
        for hours, celsius in ((30, 21.0), (5, 27.5), (2, 22.0), (200, 10.0)):
            session.add(TemperatureReading(machine_id="m-a", at=now - dt.timedelta(hours=hours),
                                           celsius=celsius))
        session.commit()
    body = _get(base_url, "/machines/m-a/temperatures", auth_headers("health"), hours=48).json()
    assert (body["safe_min_c"], body["safe_max_c"]) == (15.0, 25.0)
    assert [p["celsius"] for p in body["data"]] == [21.0, 27.5, 22.0]  # oldest first, 48 h
    assert body["count"] == 3
    for bad in (0, 2161, "x"):
        assert _get(base_url, "/machines/m-a/temperatures", auth_headers("admin"),
                    hours=bad).status_code == 422
    assert _get(base_url, "/machines/nope/temperatures",
                auth_headers("admin")).status_code == 404


def test_stock_history_steps_from_restocks_and_vends(
    base_url: str, engine: Engine, auth_headers: AuthHeaders
) -> None:
    now = utcnow()
    with Session(engine) as session:
        # m-c (8 in its slot today): restocked to 10 at the machine 3 days ago, then two vends.
        session.add(MachineEvent(machine_id="m-c", boot_id=1, seq=1, kind="restock", slot=1,
                                 device_time=now - dt.timedelta(days=3), data={"count": 10}))
        for n, hours in enumerate((40, 20)):
            session.add(DispenseEvent(machine_id="m-c", boot_id=2, seq=n + 1, slot=1,
                                      device_time=now - dt.timedelta(hours=hours),
                                      product=NALOXONE, result="ok"))
        session.add(RestockVisit(machine_id="m-c", visited_at=now - dt.timedelta(hours=10),
                                 counts={"1": 9}))
        session.commit()
    body = _get(base_url, "/machines/m-c/stock-history", auth_headers("outreach"),
                days=5).json()
    assert [p["count"] for p in body["data"]] == [10, 9, 8, 9, 9]
    assert {p["slot"] for p in body["data"]} == {1}
    # m-a has nothing in the last day: today's 8 all along.
    recent = _get(base_url, "/machines/m-a/stock-history", auth_headers("admin"), days=1).json()
    assert recent["data"][0]["count"] == 8
    assert _get(base_url, "/machines/m-c/stock-history", auth_headers("admin"),
                days=91).status_code == 422
