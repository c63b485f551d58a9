"""The officials' pages (hotspots, trends) and the machine history, run headless with AppTest.

The API client is replaced at its one seam (``session.make_client``) by the
in-memory API, as in test_pages.py; the view modules' pure functions are
tested on their own below.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from streamlit.testing.v1 import AppTest

import console
from console import hotspot_view, machine_view, trends_view
from console.api_models import (
    AreaCollection,
    DispenseStats,
    HotspotFeature,
    TemperatureHistory,
)
from tests.console.apptest import open_page, sign_in
from tests.console.fake_api import FakeState
from tests.console.memory_api import MemoryApi

APP = str(Path(console.__file__).parent / "app.py")
RUN_TIMEOUT_S = 60
SENTENCE = "A cluster this unusual would arise by chance about once in 270 days."


def _feature(alert_id: int, *, observed: int | None, status: str = "open",
             end: str = "2026-11-24", areas: tuple[str, ...] = ("Kensington",)
             ) -> dict[str, Any]:
    return {
        "type": "Feature", "id": alert_id,
        "geometry": {"type": "Point", "coordinates": [-75.123, 39.992]},
        "properties": {
            "alert_id": alert_id, "status": status, "severity": "warning",
            "message": "cluster", "radius_km": 0.8, "machines": ["test-001", "test-002"],
            "areas": list(areas), "start": "2026-11-22", "end": end,
            "observed": observed, "observed_small": observed is None, "suppression_k": 5,
            "expected": 3.2, "p_value": 1 / 270, "recurrence_interval_days": 270.0,
            "explanation": SENTENCE,
            "summary": f"{observed if observed is not None else '<5'} naloxone dispenses at 2 "
                       "machines (Kensington) from 2026-11-22 to 2026-11-24 (3 days), where "
                       "about 3.2 were expected.",
        },
    }


def _square(name: str, lon0: float) -> dict[str, Any]:
    ring = [[lon0, 39.9], [lon0 + 0.1, 39.9], [lon0 + 0.1, 40.0], [lon0, 40.0], [lon0, 39.9]]
    return {"type": "Feature", "id": name, "properties": {"name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


@pytest.fixture
def api(fake_state: FakeState, monkeypatch: pytest.MonkeyPatch) -> MemoryApi:
    """The in-memory API, signed in as health, with a current and a resolved cluster."""
    memory = MemoryApi(fake_state.machines, fake_state.alerts,
                       [_feature(9, observed=14),
                        _feature(4, observed=None, status="resolved", end="2026-11-10")])
    memory.area_features = [_square("Kensington", -75.2), _square("Fishtown", -75.1)]
    return sign_in(monkeypatch, memory, "health")


_run = open_page


def _vega(at: AppTest) -> list[Any]:
    return list(at.get("vega_lite_chart"))


def _inline_values(chart: Any) -> list[dict[str, Any]]:
    """Return every data row of a chart: inline in its spec or moved to Arrow by Streamlit."""
    spec = json.loads(chart.proto.spec)
    found: list[dict[str, Any]] = []
    for part in [spec, *spec.get("layer", [])]:
        data = part.get("data") or {}
        found.extend(data.get("values") or [])
    for dataset in chart.proto.datasets:
        found.extend(pa.ipc.open_stream(dataset.data.data).read_all().to_pylist())
    if chart.proto.data.data:
        found.extend(pa.ipc.open_stream(chart.proto.data.data).read_all().to_pylist())
    return found


def test_hotspot_page_explains_maps_and_charts_a_cluster(api: MemoryApi) -> None:
    at = _run("views/hotspots.py")
    assert at.title[0].value == "Hotspots"
    assert any(s.value == "Clusters (2)" for s in at.subheader)
    assert at.info[0].value == SENTENCE
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Observed"] == "14"
    assert metrics["Expected"] == "3.2"
    assert metrics["Machines"] == "2"
    deck = at.get("deck_gl_json_chart")[0].proto.json
    assert '"name": "Kensington"' in deck  # area outlines and their labels
    assert '"in_cluster": true' in deck
    assert '"radius_m": 800.0' in deck
    charts = _vega(at)
    assert len(charts) == 1
    rows = _inline_values(charts[0])
    shown = [r["shown"] for r in rows if "shown" in r]
    assert shown.count("<5") == 1
    assert shown.count("suppressed") == 1
    # A suppressed day carries no number anywhere in the chart.
    assert all(r["dispenses"] is None for r in rows if r.get("shown") in ("<5", "suppressed"))
    assert any(r.get("what") == "cluster window" for r in rows)
    assert not at.error


def test_hotspot_page_shows_a_suppressed_count_as_under_five(api: MemoryApi) -> None:
    at = _run("views/hotspots.py")
    at.selectbox(key="hotspot_chosen").set_value("4").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Observed"] == "<5"
    assert any(m.value.startswith("<5 naloxone") for m in at.markdown)
    at.toggle(key="hotspots_recent").set_value(False).run()
    assert any(s.value == "Clusters (1)" for s in at.subheader)
    assert not at.exception


def test_hotspot_page_without_clusters_says_so(api: MemoryApi) -> None:
    api.hotspot_features = []
    at = _run("views/hotspots.py")
    assert "No dispense clusters" in at.success[0].value
    assert not at.get("deck_gl_json_chart")


def test_trends_page_charts_weeks_and_compares_with_a_year_earlier(api: MemoryApi) -> None:
    at = _run("views/trends.py")
    assert at.title[0].value == "Trends"
    charts = _vega(at)
    assert len(charts) == 2  # by area, and against a year earlier
    table = at.dataframe[0].value
    assert "<5" in table.iloc[0].tolist()  # Fishtown's last week
    assert "suppressed" in table.iloc[1].tolist()
    assert [q["group"] for q in api.stats_queries] == ["area", "area"]
    this, before = api.stats_queries
    assert (this["from"] - before["from"]).days == 364
    assert this["from"].weekday() == 0
    at.radio(key="trends_group").set_value("product").run()
    assert api.stats_queries[-1]["group"] == "product"
    assert not at.error


def test_trends_page_counts_up_to_the_backends_day(api: MemoryApi) -> None:
    api.stats_day = date(2027, 3, 3)  # a Wednesday, months ahead of the wall clock
    at = _run("views/trends.py")
    assert at.date_input(key="trends_until").value == date(2027, 3, 3)
    # 13 weeks to the Sunday ending that week.
    assert (api.stats_queries[0]["from"], api.stats_queries[0]["to"]) == (
        date(2026, 12, 7), date(2027, 3, 7))
    assert not at.exception


def test_trends_page_without_last_years_data_says_there_is_nothing_to_compare(
    api: MemoryApi
) -> None:
    api.history_from = date(2026, 1, 1)
    at = _run("views/trends.py")
    at.date_input(key="trends_until").set_value(date(2026, 11, 24)).run()
    assert len(_vega(at)) == 1
    assert any("nothing to compare with yet" in c.value for c in at.caption)
    assert not at.exception


def test_machine_page_draws_temperature_stock_and_discrepancies(api: MemoryApi) -> None:
    at = _run("views/machine.py")
    charts = _vega(at)
    assert len(charts) == 2  # temperature with its band, stock steps
    band = [r for r in _inline_values(charts[0]) if "what" in r]
    assert band == [{"low": 15.0, "high": 25.0, "what": "safe storage 15–25 °C"}]
    assert any("Outside the safe band" in c.value for c in at.caption)
    assert len(at.dataframe) == 3  # slots, events, discrepancies
    assert not at.error


# -- pure functions ------------------------------------------------------------------------


def test_observed_counts_under_the_threshold_are_never_numbers() -> None:
    hidden = HotspotFeature.model_validate(_feature(1, observed=None))
    shown = HotspotFeature.model_validate(_feature(2, observed=12))
    assert hotspot_view.observed_text(hidden.properties) == "<5"
    assert hotspot_view.observed_text(shown.properties) == "12"
    rows = hotspot_view.hotspot_rows([hidden, shown])
    assert [r["observed"] for r in rows] == ["<5", "12"]
    assert all(r["how unusual"] == SENTENCE for r in rows)


def test_hotspot_rows_put_open_clusters_first_and_window_text_counts_days() -> None:
    old_open = HotspotFeature.model_validate(_feature(1, observed=7, end="2026-11-01"))
    resolved = HotspotFeature.model_validate(_feature(2, observed=7, status="resolved"))
    assert [r["id"] for r in hotspot_view.hotspot_rows([resolved, old_open])] == [1, 2]
    assert hotspot_view.window_text({"start": "2026-11-22", "end": "2026-11-24"}) == (
        "2026-11-22 – 2026-11-24 (3 days)")
    assert hotspot_view.window_text({"start": "2026-11-24", "end": "2026-11-24"}) == "2026-11-24"
    assert hotspot_view.areas_text({"areas": []}) == "no named area"


def test_area_polygons_fill_the_covered_areas_and_label_each_once() -> None:
    areas = AreaCollection.model_validate({"features": [
        _square("Kensington", -75.2), _square("Fishtown", -75.1),
        {"type": "Feature", "properties": {"name": "Islands"},
         "geometry": {"type": "MultiPolygon", "coordinates": [
             [[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]]]}},
    ]})
    polygons = hotspot_view.area_polygons(areas, ["Kensington"])
    assert [(p["name"], p["covered"]) for p in polygons] == [
        ("Kensington", True), ("Fishtown", False), ("Islands", False), ("Islands", False)]
    labels = {lab["name"]: lab for lab in hotspot_view.area_labels(polygons)}
    assert set(labels) == {"Kensington", "Fishtown", "Islands"}
    assert labels["Kensington"]["lon"] == pytest.approx(-75.15)
    assert labels["Islands"]["lat"] == pytest.approx(5.5)  # the larger ring


def _stats(counts: list[list[int | None]], small: list[list[bool]], totals: list[int | None]
           ) -> DispenseStats:
    buckets = ["2026-11-02T00:00:00-05:00", "2026-11-09T00:00:00-05:00"]
    return DispenseStats.model_validate({
        "from": "2026-11-02", "to": "2026-11-15", "bucket": "week", "group": "area",
        "suppression_k": 5, "buckets": buckets, "totals": [None, None], "total": None,
        "series": [{"key": k, "counts": c, "small": s, "total": t}
                   for k, c, s, t in zip(["Fishtown", "Kensington"], counts, small, totals,
                                         strict=True)]})


def test_trend_tables_show_small_counts_as_under_five_and_hidden_ones_as_suppressed() -> None:
    stats = _stats([[12, None], [20, None]], [[False, True], [False, False]], [None, 41])
    table = trends_view.stats_table(stats)
    assert table[0] == {"area": "Fishtown", "2026-11-02": "12", "2026-11-09": "<5",
                        "total": "suppressed"}
    assert table[1]["2026-11-09"] == "suppressed"
    rows = trends_view.stats_rows(stats)
    assert [r["shown"] for r in rows] == ["12", "<5", "20", "suppressed"]
    assert trends_view.keys_by_total(stats, 1) == ["Kensington"]


def test_last_year_is_the_same_weekdays_and_history_means_any_dispense() -> None:
    first, last = trends_view.period(13, date(2026, 11, 26))  # a Thursday
    assert (first.weekday(), last.weekday()) == (0, 6)
    assert (last - first).days == 13 * 7 - 1
    before = trends_view.a_year_earlier(first, last)
    assert before[0].weekday() == 0
    assert (first - before[0]).days == 364
    empty = _stats([[0, 0], [0, 0]], [[False, False], [False, False]], [0, 0])
    assert not trends_view.has_history(empty)
    only_small = _stats([[None, 0], [0, 0]], [[True, False], [False, False]], [None, 0])
    assert trends_view.has_history(only_small)
    change = trends_view.change_rows(
        _stats([[12, 10], [20, 30]], [[False] * 2] * 2, [22, 50]),
        _stats([[10, 10], [25, 25]], [[False] * 2] * 2, [20, 50]))
    assert [r["change"] for r in change] == ["+10%", "+0%"]
    rows = trends_view.comparison_rows(
        _stats([[1, 1], [1, 1]], [[False] * 2] * 2, [2, 2]),
        _stats([[1, 1], [1, 1]], [[False] * 2] * 2, [2, 2]))
    assert {r["bucket"] for r in rows if r["year"] == trends_view.LAST_YEAR} == {
        "2027-11-01", "2027-11-08"}


def test_temperature_summary_says_whether_it_left_the_band() -> None:
    def history(points: list[tuple[float, float]]) -> TemperatureHistory:
        at = datetime(2026, 11, 24, tzinfo=UTC).isoformat()
        return TemperatureHistory.model_validate({
            "machine_id": "m", "from": at, "to": at, "safe_min_c": 15.0, "safe_max_c": 25.0,
            "count": len(points),
            "data": [{"at": at, "celsius": (lo + hi) / 2, "low": lo, "high": hi}
                     for lo, hi in points]})

    assert machine_view.temperature_summary(history([])) == (
        "No temperature readings in this period.")
    assert machine_view.temperature_summary(history([(16, 20), (18, 24)])).startswith(
        "Always inside the safe band (15–25 °C)")
    assert "(1 of 2 points)" in machine_view.temperature_summary(history([(16, 20),
                                                                          (20, 27.5)]))
