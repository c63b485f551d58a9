"""Altair charts of the officials' pages and the machine detail (rows from the *_view modules).

Suppressed counts are never drawn as numbers: they have no bar, a grey tick
at zero and ``<5`` in their tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import altair as alt

WINDOW_COLOUR = "#f4a582"
OBSERVED_COLOUR = "#b2182b"
EXPECTED_COLOUR = "#2166ac"
SAFE_BAND_COLOUR = "#a6dba0"

Layered = alt.LayerChart | alt.FacetChart


def _data(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Inline the rows in the chart's spec (Altair takes a ``{"values": [...]}`` dict)."""
    return {"values": list(rows)}


def hotspot_chart(rows: Sequence[dict[str, Any]], window: dict[str, str]) -> Layered:
    """Daily dispenses as bars, the expected level as a line, the cluster's window shaded."""
    data = _data(rows)
    end = (date.fromisoformat(window["end"]) + timedelta(days=1)).isoformat()
    band = alt.Chart(_data([{"start": window["start"], "end": end,
                                  "what": "cluster window"}])).mark_rect(
        color=WINDOW_COLOUR, opacity=0.35).encode(
        x="start:T", x2="end:T", tooltip=[alt.Tooltip("what:N", title="")])
    bars = alt.Chart(data).transform_filter("datum.dispenses != null").mark_bar(
        color=OBSERVED_COLOUR, opacity=0.8).encode(
        x=alt.X("day:T", title="day"),
        y=alt.Y("dispenses:Q", title="naloxone dispenses"),
        tooltip=[alt.Tooltip("day:T"), alt.Tooltip("shown:N", title="dispenses"),
                 alt.Tooltip("expected:Q", title="expected")])
    hidden = alt.Chart(data).transform_filter("datum.dispenses == null").mark_tick(
        color="grey", thickness=2).encode(
        x="day:T", y=alt.datum(0),
        tooltip=[alt.Tooltip("day:T"), alt.Tooltip("shown:N", title="dispenses")])
    expected = alt.Chart(data).mark_line(color=EXPECTED_COLOUR, strokeDash=[4, 2]).encode(
        x="day:T", y="expected:Q",
        tooltip=[alt.Tooltip("day:T"), alt.Tooltip("expected:Q", title="expected")])
    return alt.layer(band, bars, hidden, expected).properties(height=280)


def trends_chart(rows: Sequence[dict[str, Any]], *, colour: str = "key") -> alt.Chart:
    """Counts per bucket as one line per area or product (suppressed points left out)."""
    chart: alt.Chart = alt.Chart(_data(rows)).transform_filter(
        "datum.count != null").mark_line(point=True).encode(
        x=alt.X("bucket:T", title="week starting"),
        y=alt.Y("count:Q", title="naloxone dispenses"),
        color=alt.Color(f"{colour}:N", title=""),
        tooltip=[alt.Tooltip("bucket:T", title="from"), alt.Tooltip(f"{colour}:N", title=""),
                 alt.Tooltip("shown:N", title="dispenses")],
    ).properties(height=320)
    return chart


def comparison_chart(rows: Sequence[dict[str, Any]]) -> alt.Chart:
    """This year's totals per bucket against the same buckets a year earlier."""
    chart: alt.Chart = alt.Chart(_data(rows)).transform_filter(
        "datum.count != null").mark_line(point=True).encode(
        x=alt.X("bucket:T", title="week starting (this year)"),
        y=alt.Y("count:Q", title="naloxone dispenses, all areas"),
        color=alt.Color("year:N", title="",
                        scale=alt.Scale(range=[OBSERVED_COLOUR, "#999999"])),
        strokeDash=alt.StrokeDash("year:N", legend=None),
        tooltip=[alt.Tooltip("bucket:T", title="from"), alt.Tooltip("year:N", title=""),
                 alt.Tooltip("shown:N", title="dispenses")],
    ).properties(height=260)
    return chart


def temperature_chart(rows: Sequence[dict[str, Any]], safe_min: float, safe_max: float
                      ) -> Layered:
    """Temperature over time with the safe storage band shaded (and each bucket's range)."""
    data = _data(rows)
    band = alt.Chart(_data([{"low": safe_min, "high": safe_max,
                                  "what": f"safe storage {safe_min:g}–{safe_max:g} °C"}])
                     ).mark_rect(color=SAFE_BAND_COLOUR, opacity=0.35).encode(
        y=alt.Y("low:Q", title="°C"), y2="high:Q", tooltip=[alt.Tooltip("what:N", title="")])
    spread = alt.Chart(data).mark_area(opacity=0.2, color=EXPECTED_COLOUR).encode(
        x="at:T", y="low:Q", y2="high:Q")
    line = alt.Chart(data).mark_line(color=EXPECTED_COLOUR).encode(
        x=alt.X("at:T", title="time"), y=alt.Y("celsius:Q", title="°C"),
        tooltip=[alt.Tooltip("at:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("celsius:Q"),
                 alt.Tooltip("low:Q"), alt.Tooltip("high:Q")])
    return alt.layer(band, spread, line).properties(height=260)


def stock_chart(rows: Sequence[dict[str, Any]]) -> alt.Chart:
    """Each slot's count over time as a step line."""
    chart: alt.Chart = alt.Chart(_data(rows)).mark_line(interpolate="step-after").encode(
        x=alt.X("at:T", title="time"),
        y=alt.Y("count:Q", title="items in slot"),
        color=alt.Color("slot:N", title="slot"),
        tooltip=[alt.Tooltip("at:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("slot:N"),
                 alt.Tooltip("count:Q")],
    ).properties(height=240)
    return chart
