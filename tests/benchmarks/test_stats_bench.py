"""Dispense statistics on a year of a 200-machine fleet: query time on SQLite and PostgreSQL.

On PostgreSQL each query is timed twice: right after the bulk load, before any
statistics exist (autovacuum kept off the table, as after an import or a
replay), and after ANALYZE. The year by week is also timed with the SQL of the
first version (every dispense joined to its machine, days as text), the
baseline of the same run. Writes bench-results/stats.json (docs/hotspots.md).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import insert, text
from sqlmodel import Session

from backend.areas.features import parse_feature_collection
from backend.areas.store import replace_areas
from backend.auth.principal import Principal, Role
from backend.db import make_engine, migrate
from backend.models import DispenseEvent, Machine
from backend.stats.dispenses import Bucket, Group, count_dispenses
from backend.stats.table import publish
from simulators.fleet_plan import plan_fleet
from simulators.neighbourhood_cells import collection
from tests.postgres import create_pg_database, drop_pg_database, postgres_unavailable

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "stats.json"
MACHINES, DAYS, PER_DAY = 200, 365, 4.0
END = dt.date(2026, 3, 31)
ZONE = ZoneInfo("America/New_York")


OLD_PG_YEAR = text(
    "SELECT to_char(timezone(:zone, d.device_time), 'YYYY-MM-DD'), m.area, count(*) "
    "FROM dispense_event d JOIN machine m ON m.id = d.machine_id "
    "WHERE d.result = 'ok' AND d.device_time >= :lo AND d.device_time < :hi GROUP BY 1, 2")
"""The first version's year by week on PostgreSQL (before the per-machine pre-aggregation)."""


def _fill(url: str) -> int:
    migrate(url)
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # statistics only from the ANALYZE below
            conn.execute(text("ALTER TABLE dispense_event SET (autovacuum_enabled = false)"))
    rng = np.random.default_rng(5)
    fleet = plan_fleet(MACHINES, seed=5)
    with Session(engine) as session:
        session.add_all(Machine(id=m.machine_id, name=m.name, lat=m.lat, lon=m.lon)
                        for m in fleet)
        session.flush()
        replace_areas(session, parse_feature_collection(collection()), actor="bench",
                      source=None)
        session.commit()
        start = dt.datetime.combine(END - dt.timedelta(days=DAYS - 1), dt.time.min, dt.UTC)
        rows = []
        for m in fleet:
            n = int(rng.poisson(PER_DAY * DAYS))
            offsets = np.sort(rng.uniform(0, DAYS * 86400, n))
            rows += [{"machine_id": m.machine_id, "boot_id": 1, "seq": i + 1,
                      "device_time": start + dt.timedelta(seconds=float(s)),
                      "received_at": start, "slot": 1, "product": "naloxone-nasal-4mg",
                      "result": "ok", "drop_confirmed": True, "source": "nxlink"}
                     for i, s in enumerate(offsets)]
        for i in range(0, len(rows), 20_000):
            session.execute(insert(DispenseEvent), rows[i:i + 20_000])
        session.commit()
    engine.dispose()
    return len(rows)


def _time(url: str) -> dict[str, float]:
    engine = make_engine(url)
    health = Principal("bench", Role.HEALTH)
    cases = {"year_by_week_and_area": (Bucket.WEEK, Group.AREA, 365),
             "quarter_by_day_and_area": (Bucket.DAY, Group.AREA, 90),
             "quarter_by_day_and_machine": (Bucket.DAY, Group.MACHINE, 90),
             "fortnight_by_hour_and_area": (Bucket.HOUR, Group.AREA, 14)}
    out = {}
    with Session(engine) as session:
        for name, (bucket, group, days) in cases.items():
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                table = count_dispenses(session, principal=health,
                                        first=END - dt.timedelta(days=days - 1), last=END,
                                        bucket=bucket, group=group, zone=ZONE)
                publish(table, 5)
                best = min(best, time.perf_counter() - started)
            out[name] = round(best * 1000, 1)
        if engine.dialect.name == "postgresql":
            lo = dt.datetime.combine(END - dt.timedelta(days=364), dt.time.min, ZONE)
            hi = dt.datetime.combine(END + dt.timedelta(days=1), dt.time.min, ZONE)
            started = time.perf_counter()
            session.execute(OLD_PG_YEAR, {"zone": ZONE.key, "lo": lo, "hi": hi}).all()
            out["old_sql_year_by_week_and_area"] = round(
                (time.perf_counter() - started) * 1000, 1)
    engine.dispose()
    return out


def _analyze(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def test_stats_query_time(tmp_path: Path) -> None:
    figures: dict[str, object] = {"machines": MACHINES, "days": DAYS}
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    figures["dispenses"] = _fill(url)
    figures["sqlite_ms"] = _time(url)
    reason = postgres_unavailable()
    if reason is None:
        pg = create_pg_database(prefix="nx_bench_stats")
        try:
            _fill(pg)
            figures["postgres_no_statistics_ms"] = _time(pg)
            _analyze(pg)
            figures["postgres_ms"] = _time(pg)
            for when in ("postgres_no_statistics_ms", "postgres_ms"):
                timed: dict[str, float] = figures[when]  # type: ignore[assignment]
                timed["old_over_new_year"] = round(
                    timed["old_sql_year_by_week_and_area"] / timed["year_by_week_and_area"], 2)
        finally:
            drop_pg_database(pg)
    print("\nstats:", json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    if reason is not None:
        pytest.skip(f"SQLite figures written; PostgreSQL: {reason}")
