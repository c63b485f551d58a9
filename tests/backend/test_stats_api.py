"""Named areas, dispense statistics and exports over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from backend import crud
from backend.app import create_app
from backend.areas.features import parse_feature_collection
from backend.areas.store import replace_areas
from backend.config import Settings
from backend.db import make_engine, migrate
from backend.models import AuditRecord, DispenseEvent, Machine, NamedArea
from tests.backend.conftest import AuthHeaders
from tests.backend.procs import REPO
from tests.http_server import serve_http

ZONE = ZoneInfo("America/New_York")
NALOXONE = "naloxone-nasal-4mg"
STRIPS = "fentanyl-test-strips"


def _square(name: str, lat0: float, lat1: float) -> dict[str, Any]:
    ring = [[-75.2, lat0], [-75.0, lat0], [-75.0, lat1], [-75.2, lat1], [-75.2, lat0]]
    return {"type": "Feature", "properties": {"name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


AREAS = {"type": "FeatureCollection",
         "features": [_square("North", 40.0, 40.1), _square("South", 39.9, 40.0)]}
PLACES = {"m-n1": (40.05, -75.1), "m-n2": (40.02, -75.05), "m-s1": (39.95, -75.1),
          "m-out": (39.5, -75.1)}


def _areas_cli(url: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-c", "from backend.cli import main; main()",
                           "areas", "load", str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _register(session: Session, machine_id: str, *, area: str | None = None) -> None:
    lat, lon = PLACES[machine_id]
    crud.register_machine(session=session, machine_id=machine_id, name=machine_id, lat=lat,
                          lon=lon, area=area, actor="test")


def _dispense(session: Session, machine_id: str, local: dt.datetime, n: int,
              product: str = NALOXONE, result: str = "ok") -> None:
    start = len(session.exec(select(DispenseEvent)).all())
    for i in range(n):
        session.add(DispenseEvent(machine_id=machine_id, boot_id=1, seq=start + i + 1,
                                  device_time=local.replace(tzinfo=ZONE), slot=1,
                                  product=product, result=result))
    session.commit()


def _machines_and_areas(engine: Engine, load: Callable[[], None]) -> None:
    """Register three machines, load the areas with ``load``, register a fourth."""
    with Session(engine) as session:
        for machine_id in ("m-n1", "m-s1", "m-out"):
            _register(session, machine_id, area="Old")
    load()
    with Session(engine) as session:
        _register(session, "m-n2")  # registered after the load: placed at once


def _load_in_process(engine: Engine) -> None:
    with Session(engine) as session:
        replace_areas(session, parse_feature_collection(AREAS), actor="test", source="test")
        session.commit()


@pytest.fixture
def loaded(migrated_url: str, engine: Engine) -> str:
    """Machines placed in two areas (and one in none), and dispenses in March 2026."""
    _machines_and_areas(engine, lambda: _load_in_process(engine))
    with Session(engine) as session:
        # Week of Mon 2 March: North 10 + 6, South 8, outside 1; week of 9 March:
        # North 3, South 7 naloxone and 1 test-strip pack. 22:00 on the 2nd in New
        # York is 03:00 UTC on the 3rd: it counts on the 2nd.
        _dispense(session, "m-n1", dt.datetime(2026, 3, 2, 22, 0), 10)
        _dispense(session, "m-n2", dt.datetime(2026, 3, 3, 9, 0), 6)
        _dispense(session, "m-s1", dt.datetime(2026, 3, 4, 12, 0), 8)
        _dispense(session, "m-out", dt.datetime(2026, 3, 5, 12, 0), 1)
        _dispense(session, "m-n1", dt.datetime(2026, 3, 9, 8, 0), 3)
        _dispense(session, "m-s1", dt.datetime(2026, 3, 10, 8, 0), 7)
        _dispense(session, "m-s1", dt.datetime(2026, 3, 10, 9, 0), 1, product=STRIPS)
        _dispense(session, "m-s1", dt.datetime(2026, 3, 10, 9, 0), 4, result="jammed")
        # After the change to daylight time (8 March): 04:30 UTC, the 11th in New York.
        _dispense(session, "m-s1", dt.datetime(2026, 3, 11, 0, 30), 1)
    return migrated_url


@pytest.fixture
def base_url(loaded: str) -> Iterator[str]:
    settings = Settings(environment="test", database_url=loaded,
                        stats_timezone="America/New_York")
    with serve_http(create_app(settings)) as url:
        yield url


@pytest.fixture
def cli_db(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A migrated SQLite database (the CLI's SQL is replace_areas', run on both by `loaded`)."""
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    engine = make_engine(url, immediate=True)
    try:
        yield url, engine
    finally:
        engine.dispose()


def test_areas_load_places_every_machine(cli_db: tuple[str, Engine], tmp_path: Path) -> None:
    migrated_url, engine = cli_db
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps(AREAS))

    def load() -> None:
        done = _areas_cli(migrated_url, path)
        assert done.returncode == 0, done.stderr
        assert "2 areas loaded" in done.stdout
        assert "1 in no area" in done.stdout

    _machines_and_areas(engine, load)
    with Session(engine) as session:
        placed = {m.id: m.area for m in session.exec(select(Machine)).all()}
        assert placed == {"m-n1": "North", "m-n2": "North", "m-s1": "South", "m-out": None}
        record = session.exec(select(AuditRecord).where(
            AuditRecord.action == "areas.load")).one()
        assert record.actor.startswith("cli:")
        # Moving a machine re-places it.
        crud.register_machine(session=session, machine_id="m-out", name="m-out", lat=39.95,
                              lon=-75.1, actor="test")
        assert session.get(Machine, "m-out").area == "South"  # type: ignore[union-attr]
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        _square("East", 40.0, 40.1), {"type": "Feature", "properties": {},
                                      "geometry": AREAS["features"][0]["geometry"]}]}))
    done = _areas_cli(migrated_url, bad)
    assert done.returncode == 2
    assert "feature 2 needs properties.name" in done.stderr
    with Session(engine) as session:
        assert sorted(session.exec(select(NamedArea.name)).all()) == ["North", "South"]


def _stats(base_url: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    query = {"from": "2026-03-02", "to": "2026-03-15", "bucket": "week", **params}
    return httpx.get(f"{base_url}/api/v1/stats/dispenses", params=query, headers=headers,
                     timeout=10)


def test_stats_by_week_area_product_hour_suppressed_and_scoped(
    base_url: str, auth_headers: AuthHeaders
) -> None:
    admin = auth_headers("admin")
    body = _stats(base_url, admin).json()
    assert body["suppression_k"] is None
    assert [b[:10] for b in body["buckets"]] == ["2026-03-02", "2026-03-09"]
    assert {s["key"]: s["counts"] for s in body["series"]} == {
        "North": [16, 3], "South": [8, 9], "(no area)": [1, 0]}
    assert body["totals"] == [25, 12]
    assert body["total"] == 37
    south = _stats(base_url, admin, bucket="day", group="machine",
                   **{"from": "2026-03-10", "to": "2026-03-11"}).json()
    assert south["series"] == [{"key": "m-s1", "counts": [8, 1], "small": [False, False],
                                "total": 9}]
    only = _stats(base_url, admin, group="product", product=[STRIPS]).json()
    assert {s["key"]: s["counts"] for s in only["series"]} == {STRIPS: [0, 1]}
    days = _stats(base_url, admin, bucket="day", group="machine", to="2026-03-03").json()
    assert {s["key"]: s["counts"] for s in days["series"]} == {"m-n1": [10, 0],
                                                                 "m-n2": [0, 6]}
    hours = _stats(base_url, admin, bucket="hour", **{"from": "2026-03-02",
                                                        "to": "2026-03-02"}).json()
    assert len(hours["buckets"]) == 24
    assert hours["buckets"][22] == "2026-03-02T22:00:00-05:00"
    assert hours["series"][0]["counts"][22] == 10

    # As health: suppressed, scoped to areas, refused to outreach and for bad ranges.
    health = _stats(base_url, auth_headers("health")).json()
    assert health["suppression_k"] == 5
    series = {s["key"]: s for s in health["series"]}
    assert series["North"]["counts"][1] is None
    assert series["North"]["small"][1]
    assert series["(no area)"]["counts"][0] is None
    assert series["(no area)"]["total"] is None
    published = [v for s in health["series"] for v in s["counts"] if v is not None]
    assert all(v == 0 or v >= 5 for v in published)
    north = _stats(base_url, auth_headers("health", areas=["North"]), group="machine").json()
    assert {s["key"] for s in north["series"]} == {"m-n1", "m-n2"}
    assert _stats(base_url, auth_headers("outreach")).status_code == 403
    for bad in ({"to": "2026-03-01"}, {"bucket": "hour", "to": "2026-04-15"},
                {"from": "1999-12-31"}, {"to": "9999-12-31"},
                {"bucket": "month"}, {"group": "city"}):
        answer = _stats(base_url, auth_headers("health"), **bad)
        assert answer.status_code == 422, bad
        assert answer.headers["content-type"].startswith("application/problem+json")


def _csv(base_url: str, headers: dict[str, str]) -> dict[tuple[str, str], str]:
    answer = httpx.get(f"{base_url}/api/v1/exports/dispenses.csv",
                       params={"from": "2026-03-02", "to": "2026-03-15", "period": "week"},
                       headers=headers, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    return {(r["area"], r["period_start"]): r["dispenses"]
            for r in csv.DictReader(io.StringIO(answer.text))}


def test_exports_suppress_small_counts_but_satscan_files_do_not(
    base_url: str, auth_headers: AuthHeaders
) -> None:
    raw = _csv(base_url, auth_headers("admin"))  # naloxone only: the strips are not counted
    assert raw[("South", "2026-03-09")] == "8"
    assert raw[("(no area)", "2026-03-02")] == "1"
    assert raw[("All areas", "All periods")] == "36"
    shown = _csv(base_url, auth_headers("health"))
    assert shown[("North", "2026-03-09")] == "<5"
    assert shown[("(no area)", "2026-03-02")] == "<5"
    assert shown[("(no area)", "All periods")] == "<5"
    # North's other week would give the 3 away from North's total: hidden as well.
    assert shown[("North", "2026-03-02")] == "suppressed"
    for value in shown.values():
        assert not value.isdigit() or int(value) == 0 or int(value) >= 5

    _geojson_and_satscan(base_url, auth_headers)


def _geojson_and_satscan(base_url: str, auth_headers: AuthHeaders) -> None:
    health = auth_headers("health")
    answer = httpx.get(f"{base_url}/api/v1/exports/dispenses.geojson",
                       params={"from": "2026-03-02", "to": "2026-03-08", "period": "day"},
                       headers=health, timeout=10)
    assert answer.headers["content-type"] == "application/geo+json"
    features = {f["properties"]["name"]: f for f in answer.json()["features"]}
    assert features["North"]["geometry"] == AREAS["features"][0]["geometry"]
    assert features["(no area)"]["geometry"] is None
    assert features["(no area)"]["properties"]["total"] == "<5"
    counts = [d["count"] for f in features.values() for d in f["properties"]["dispenses"]]
    assert "<5" in counts
    assert "suppressed" in counts
    assert all(c in ("<5", "suppressed") or c == 0 or c >= 5 for c in counts)
    cas = httpx.get(f"{base_url}/api/v1/exports/satscan.cas", params={"end": "2026-03-15"},
                    headers=health, timeout=10)
    assert cas.status_code == 200
    assert "m-n1\t10\t2026/03/02" in cas.text.splitlines()
    geo = httpx.get(f"{base_url}/api/v1/exports/satscan.geo", params={"end": "2026-03-15"},
                    headers=auth_headers("health", areas=["South"]), timeout=10)
    assert [line.split("\t")[0] for line in geo.text.splitlines()] == ["m-s1"]
    assert httpx.get(f"{base_url}/api/v1/exports/satscan.cas", params={"end": "2026-03-15"},
                     headers=auth_headers("outreach"), timeout=10).status_code == 403


def test_areas_route_gives_outlines_and_names_by_scope_without_counts(
    base_url: str, auth_headers: AuthHeaders
) -> None:
    def areas(headers: dict[str, str]) -> httpx.Response:
        return httpx.get(f"{base_url}/api/v1/areas", headers=headers, timeout=10)

    answer = areas(auth_headers("outreach"))  # maps for everyone who reads the fleet
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/geo+json")
    body = answer.json()
    assert body["type"] == "FeatureCollection"
    assert [f["properties"] for f in body["features"]] == [{"name": "North"}, {"name": "South"}]
    assert body["features"][0]["geometry"] == AREAS["features"][0]["geometry"]
    limited = areas(auth_headers("health", areas=["South"])).json()
    assert [f["properties"]["name"] for f in limited["features"]] == ["South"]
    assert areas(auth_headers("provisioning")).status_code == 403
    assert areas({}).status_code == 401


def test_stats_today_follows_the_data_clock_as_the_hotspot_scan_does(
    base_url: str, auth_headers: AuthHeaders, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{base_url}/api/v1/stats/today"
    health = auth_headers("health")
    before = dt.datetime.now(ZONE).date().isoformat()
    wall = httpx.get(url, headers=health, timeout=10).json()
    after = dt.datetime.now(ZONE).date().isoformat()
    assert wall["today"] in {before, after}
    assert (wall["timezone"], wall["clock"]) == ("America/New_York", "wall")
    # A replay or the accelerated demo: its newest successful dispense is "today"
    # (00:30 on 11 March in New York; the jammed vends of the 10th do not count).
    monkeypatch.setenv("NX_HOTSPOT_CLOCK", "data")
    data = httpx.get(url, headers=health, timeout=10).json()
    assert data == {"today": "2026-03-11", "timezone": "America/New_York", "clock": "data"}
    assert httpx.get(url, headers=auth_headers("outreach"), timeout=10).status_code == 403
