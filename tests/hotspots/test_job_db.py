"""The hotspot job on a real database (SQLite, and PostgreSQL where it answers), over real HTTP."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from backend import crud
from backend.app import create_app
from backend.areas.features import parse_feature_collection
from backend.areas.store import replace_areas
from backend.config import Settings
from backend.db import make_engine, migrate
from backend.hotspots import satscan_io
from backend.hotspots.export import export_satscan
from backend.hotspots.geometry import CoordinateSystem, to_points
from backend.hotspots.settings import HotspotSettings
from backend.hotspots.store import run_hotspot_job
from backend.hotspots.stpscan import ScanSettings, scan
from backend.models import Alert, AlertType, DispenseEvent
from tests.backend.conftest import bearer, make_token
from tests.http_server import serve_http
from tests.postgres import (
    create_pg_database,
    drop_pg_database,
    postgres_unavailable,
)

PG_REASON = postgres_unavailable()
NOW = dt.datetime(2026, 3, 31, 18, 0, tzinfo=dt.UTC)
SURGE = ["hx-22", "hx-23", "hx-32"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """A migrated database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/nx.db"
        migrate(url)
        yield url
        return
    if PG_REASON is not None:
        pytest.skip(PG_REASON)
    url = create_pg_database(prefix="nx_hotspot")
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


def seed_fleet(engine: Engine, *, days: int = 40, surge_day: int = 0) -> None:
    """Register a 6 x 6 grid of machines and about one naloxone dispense a day each.

    Machines in SURGE get 11 extra dispenses over the two days ending `surge_day`
    days before NOW.
    """
    rng = np.random.default_rng(5)
    rows: list[DispenseEvent] = []
    with Session(engine) as session:
        for r in range(6):
            for c in range(6):
                machine_id = f"hx-{r}{c}"
                crud.register_machine(
                    session=session, machine_id=machine_id, name=machine_id, actor="test",
                    lat=39.95 + 0.01 * r, lon=-75.16 + 0.013 * c,
                    slots=[{"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 50,
                            "count": 50}])
                seq = 0
                for back in range(days):
                    n = int(rng.poisson(1.0))
                    if machine_id in SURGE and back in (surge_day, surge_day + 1):
                        n += 6
                    for _ in range(n):
                        seq += 1
                        rows.append(DispenseEvent(
                            machine_id=machine_id, boot_id=1, seq=seq,
                            device_time=NOW - dt.timedelta(days=back, hours=2),
                            slot=1, product="naloxone-nasal-4mg", result="ok"))
        session.add_all(rows)
        session.commit()


def hotspot_settings() -> HotspotSettings:
    return HotspotSettings(study_days=28, replicates=199, seed=11, workers=1,
                           alert_recurrence_days=100, keep_recurrence_days=20,
                           interval_s=0.05)


def hotspot_alerts(engine: Engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).where(
            Alert.type == AlertType.OVERDOSE_HOTSPOT.value)))


def test_job_opens_once_keeps_and_resolves(engine: Engine) -> None:
    seed_fleet(engine)
    cfg = hotspot_settings()
    first = run_hotspot_job(engine, cfg, now=NOW)
    assert first.opened == 1
    alerts = hotspot_alerts(engine)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.status == "open"
    assert set(SURGE) <= set(alert.details["machines"])
    assert alert.details["recurrence_interval_days"] >= 100
    assert alert.details["end"] == NOW.date().isoformat()
    # The next run sees the same cluster: refreshed, not raised again.
    second = run_hotspot_job(engine, cfg, now=NOW + dt.timedelta(hours=1))
    assert (second.opened, second.updated, second.resolved) == (0, 1, 0)
    assert len(hotspot_alerts(engine)) == 1
    # Ten days on, the surge has left every 7-day window: the alert closes.
    later = run_hotspot_job(engine, cfg, now=NOW + dt.timedelta(days=10))
    assert later.resolved == 1
    (closed,) = hotspot_alerts(engine)
    assert closed.status == "resolved"
    assert closed.resolved_by == "system"


def test_quiet_fleet_raises_nothing(engine: Engine) -> None:
    seed_fleet(engine, surge_day=20)  # the surge is long over by NOW
    report = run_hotspot_job(engine, hotspot_settings(), now=NOW)
    assert report.opened == 0
    assert hotspot_alerts(engine) == []


@pytest.fixture
def client(db_url: str) -> Iterator[httpx.Client]:
    """The backend app served by uvicorn on a free port, called with a health token."""
    app = create_app(Settings(environment="test", database_url=db_url))
    with serve_http(app) as base_url, httpx.Client(
            base_url=base_url, timeout=10, headers=bearer(make_token(db_url, "health"))
    ) as http:
        yield http


def test_hotspots_endpoint_serves_areas_as_geojson(engine: Engine,
                                                    client: httpx.Client) -> None:
    assert client.get("/api/v1/hotspots").json() == {"type": "FeatureCollection",
                                                     "features": []}
    seed_fleet(engine)
    city = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"name": "Test City"},
        "geometry": {"type": "Polygon", "coordinates": [[[-75.2, 39.9], [-75.0, 39.9],
                                                         [-75.0, 40.1], [-75.2, 40.1],
                                                         [-75.2, 39.9]]]}}]}
    with Session(engine) as session:
        replace_areas(session, parse_feature_collection(city), actor="test", source=None)
        session.commit()
    run_hotspot_job(engine, hotspot_settings(), now=NOW)
    response = client.get("/api/v1/hotspots")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    doc = response.json()
    (feature,) = doc["features"]
    lon, lat = feature["geometry"]["coordinates"]
    assert 39.9 < lat < 40.1
    assert -75.2 < lon < -75.0
    props = feature["properties"]
    assert set(SURGE) <= set(props["machines"])
    assert props["observed"] > props["expected"]
    assert 0 < props["p_value"] <= 0.01
    assert props["radius_km"] <= 3.0
    assert props["status"] == "open"
    assert props["areas"] == ["Test City"]
    # Areas only: nothing about single dispenses.
    assert "device_time" not in response.text
    assert "seq" not in props
    run_hotspot_job(engine, hotspot_settings(), now=NOW + dt.timedelta(days=10))
    assert client.get("/api/v1/hotspots").json()["features"] == []
    closed = client.get("/api/v1/hotspots", params={"include_resolved": "true"}).json()
    assert closed["features"][0]["properties"]["status"] == "resolved"


def test_export_writes_satscan_files_that_find_the_surge(engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    cas, geo, cases = export_satscan(engine, hotspot_settings(), tmp_path, today=NOW.date())
    records = satscan_io.read_cas(cas)
    locations = satscan_io.read_geo(geo)
    assert sum(r.count for r in records) == cases > 0
    assert len(locations) == 36
    # One record per machine and day: counts, never single dispenses.
    assert len({(r.location_id, r.day) for r in records}) == len(records)
    start = NOW.date() - dt.timedelta(days=27)
    matrix = satscan_io.case_matrix(records, locations, start, NOW.date())
    result = scan(matrix.counts, to_points(satscan_io.coordinates(locations),
                                           CoordinateSystem.LATLON),
                  ScanSettings(replicates=99, seed=2))
    top = result.clusters[0]
    assert set(SURGE) <= {locations[i].location_id for i in top.locations}


def test_job_and_export_commands(engine: Engine, db_url: str, tmp_path: Path) -> None:
    seed_fleet(engine, days=30)
    env = {**os.environ, "NX_DATABASE_URL": db_url, "NX_HOTSPOT_STUDY_DAYS": "28",
           "NX_HOTSPOT_REPLICATES": "199", "NX_HOTSPOT_WORKERS": "1"}
    nx_backend = [sys.executable, "-c", "from backend.cli import main; main()", "hotspots"]
    last_day = NOW.date().strftime("%Y/%m/%d")
    done = subprocess.run([*nx_backend, "export", "--out", str(tmp_path), "--end", last_day],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "naloxnet.cas").read_text().count("\n") > 36
    assert len((tmp_path / "naloxnet.geo").read_text().splitlines()) == 36
    job = [*nx_backend, "job", "--once", "--day", last_day]
    done = subprocess.run(job, capture_output=True, text=True, timeout=120, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["opened"], report["updated"], report["resolved"]) == (1, 0, 0)
    again = subprocess.run(job, capture_output=True, text=True, timeout=120, env=env,
                           check=False)
    assert json.loads(again.stdout)["opened"] == 0
    assert len(hotspot_alerts(engine)) == 1


def test_data_clock_scans_as_of_the_newest_dispense(engine: Engine) -> None:
    """Accelerated demos and replays run ahead of (or behind) the wall clock."""
    seed_fleet(engine)
    cfg = hotspot_settings().model_copy(update={"clock": "data"})
    report = run_hotspot_job(engine, cfg)
    assert report.opened == 1
    (alert,) = hotspot_alerts(engine)
    assert alert.details["end"] == NOW.date().isoformat()
