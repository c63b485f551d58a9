"""``nx-backend report weekly`` on SQLite with a few hundred dispenses: one self-contained page."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel import Session

from backend.areas.features import parse_feature_collection
from backend.areas.store import replace_areas
from backend.db import make_engine, migrate
from backend.hotspots.settings import HotspotSettings
from backend.models import Alert, DispenseEvent, Machine
from backend.report.html import render
from backend.report.svg import MapArea, MapMachine, line_chart_svg, map_svg
from backend.report.weekly import weekly_report
from tests.backend.conftest import register
from tests.backend.procs import REPO

ZONE = ZoneInfo("America/New_York")
END = dt.date(2026, 3, 29)  # a Sunday
SENTENCE = ("A cluster this unusual would arise by chance about once in 500 days (about 1.4 "
            "years).")


def _square(name: str, lat0: float) -> dict[str, Any]:
    ring = [[-74.1, lat0], [-73.9, lat0], [-73.9, lat0 + 0.1], [-74.1, lat0 + 0.1],
            [-74.1, lat0]]
    return {"type": "Feature", "properties": {"name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _fill(url: str) -> None:
    """Three machines in two areas, 8 weeks of dispenses (and the same weeks a year earlier
    for one machine), a cluster in North, and one machine out of naloxone for 3 days."""
    migrate(url)
    engine = make_engine(url, immediate=True)
    with Session(engine) as session:
        for machine_id, lat in (("m-n1", 40.75), ("m-n2", 40.76), ("m-s1", 40.65)):
            register(session, machine_id, slots=2)
            machine = session.get(Machine, machine_id)
            assert machine is not None
            machine.lat, machine.lon = lat, -74.0
            session.add(machine)
        session.commit()
        replace_areas(session, parse_feature_collection({"type": "FeatureCollection",
                      "features": [_square("North", 40.7), _square("South", 40.6)]}),
                      actor="test", source="test")
        rows: list[dict[str, Any]] = []

        def dispense(machine_id: str, day: dt.date, n: int) -> None:
            for i in range(n):
                rows.append({"machine_id": machine_id, "boot_id": 1, "seq": len(rows) + 1,
                             "slot": 1, "device_time": dt.datetime.combine(
                                 day, dt.time(10, i), ZONE),
                             "received_at": dt.datetime.now(dt.UTC),
                             "product": "naloxone-nasal-4mg", "result": "ok",
                             "drop_confirmed": True, "source": "nxlink"})

        for n in range(56):
            day = END - dt.timedelta(days=n)
            dispense("m-n1", day, 4)
            dispense("m-n2", day, 1 if n < 40 else 0)
            dispense("m-s1", day, 1 if n % 7 == 0 else 0)  # South: 1 a week, always <5
            dispense("m-n1", day - dt.timedelta(days=364), 2)
        session.execute(insert(DispenseEvent), rows)
        session.add(Alert(type="overdose_hotspot", severity="critical", subject="area:m-n1",
                          message="cluster", details={
                              "detector": "space-time-permutation", "centre_machine": "m-n1",
                              "lat": 40.75, "lon": -74.0, "radius_km": 1.2,
                              "machines": ["m-n1", "m-n2"], "areas": ["North"],
                              "start": "2026-03-27", "end": "2026-03-29", "observed": 15,
                              "expected": 6.1, "p_value": 0.002,
                              "recurrence_interval_days": 500.0, "statistic": 5.0},
                          opened_at=dt.datetime(2026, 3, 29, 12, tzinfo=dt.UTC)))
        session.add(Alert(type="empty_slot", severity="high", subject="m-s1/slot/2",
                          machine_id="m-s1", message="empty",
                          opened_at=dt.datetime(2026, 3, 27, 4, tzinfo=dt.UTC)))
        session.commit()
    engine.dispose()


def test_report_weekly_writes_one_page_with_map_trends_clusters_and_empty_machines(
    tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    _fill(url)
    out = tmp_path / "report.html"
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url,
           "NX_STATS_TIMEZONE": "America/New_York"}
    done = subprocess.run([sys.executable, "-c", "from backend.cli import main; main()",
                           "report", "weekly", "--end", END.isoformat(), "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "1 clusters, 1 machines out of naloxone" in done.stdout
    page = out.read_text(encoding="utf-8")
    artefacts = REPO / "var" / "test-artifacts" / "test_weekly_report"
    artefacts.mkdir(parents=True, exist_ok=True)
    (artefacts / "report.html").write_text(page, encoding="utf-8")
    # Self-contained: no script, no link to anything outside the page.
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert page.count("<svg") == 2  # the map and the trends chart
    assert page.count("<polygon") == 2
    assert ">North</text>" in page
    assert SENTENCE in page
    assert "15 naloxone dispenses at 2 machines (North)" in page
    assert "Machine m-s1 (m-s1)</td><td>South</td><td>2026-03-27 04:00 UTC</td><td>3</td>" in (
        page)
    # South's weekly 1 never appears as a number; the week's total does.
    south = re.search(r"<tr><td>South</td>(.*?)</tr>", page)
    assert south is not None
    assert re.findall(r"<td>([^<]*)</td>", south.group(1)) == ["&lt;5"] * 8 + ["8"]
    assert "<b>36</b>these 7 days" in page  # 28 + 7 + 1: the North machines and South's 1
    assert "a year earlier" in page


def test_a_week_without_data_still_renders_and_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        report = weekly_report(session, end=END, weeks=4, k=5, hotspots=HotspotSettings())
    engine.dispose()
    page = render(report, generated_at=dt.datetime(2026, 3, 30, tzinfo=dt.UTC))
    assert "No dispense cluster was flagged during the week." in page
    assert "No machine was out of naloxone at the end of the week." in page
    assert "no comparison yet" in page


def test_svg_map_and_chart_escape_names_and_break_lines_at_suppressed_counts() -> None:
    svg = map_svg([MapArea("<North>", (((-74.0, 40.7), (-73.9, 40.7), (-73.9, 40.8)),))],
                  [MapMachine("m&1", 40.75, -73.95, "empty")], [])
    assert "&lt;North&gt;" in svg
    assert "m&amp;1 (empty)" in svg
    chart = line_chart_svg(["a", "b", "c", "d"], [("x", [5, 6, None, 8])])
    assert chart.count("<polyline") == 1  # 5-6, then a break; 8 stands alone
    assert chart.count("<circle") == 3
