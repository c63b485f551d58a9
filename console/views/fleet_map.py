"""Fleet map: areas, dispense heat, hotspots and machines by state, with the open alerts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import streamlit as st

from console import area_view, fleet_view, session
from console.api_models import AlertStatus
from console.client import ApiError
from console.map_deck import MapLayers, fleet_deck
from console.roles import Action

MACHINE_PAGE = Path(__file__).resolve().parent / "machine.py"
HEAT_DAYS = {"7 days": 7, "28 days": 28, "91 days": 91}

st.title("Fleet map")


def area_layers(api: session.ConsoleApi, hotspots: list[dict[str, Any]], heat_days: int | None
                ) -> tuple[MapLayers, str | None]:
    """Return the layers besides the machines, and the heat legend (None: no heat layer)."""
    outlines: list[dict[str, Any]] = []
    names: list[dict[str, Any]] = []
    try:
        outlines, names = area_view.area_rows(api.areas())
    except ApiError as exc:
        st.warning(f"Area outlines unavailable: {exc}")
    heat: list[dict[str, Any]] = []
    totals: dict[str, str] = {}
    legend = None
    if heat_days is not None:
        # The backend's day, not this machine's: the demo's clock runs weeks ahead.
        last = session.statistics_day(api)
        first = last - timedelta(days=heat_days - 1)
        try:
            counts = api.dispenses_by_area(first, last)
        except ApiError as exc:
            st.warning(f"Dispense heat unavailable: {exc}")
        else:
            heat, totals = area_view.heat_rows(counts), area_view.heat_labels(counts)
            legend = (f"Dispenses {first:%d %b} – {last:%d %b %Y}. "
                      + area_view.heat_legend(counts.suppression_k))
    layers = MapLayers(outlines=outlines, area_names=area_view.labelled(names, totals),
                       heat=heat, hotspots=hotspots)
    return layers, legend


@st.fragment(run_every=session.refresh_s())
def live_fleet() -> None:
    """Draw the state tiles, the map and the open alerts from fresh API data."""
    api = session.api()
    try:
        machines = api.all_machines()
        alerts = api.alerts(status=AlertStatus.OPEN)
    except ApiError as exc:
        session.report(exc, "Cannot load the fleet")
        return

    hotspots: list[dict[str, Any]] = []
    officials = session.may(Action.VIEW_HOTSPOTS)  # dispense counts are health's, not outreach's
    if officials:
        try:
            hotspots = fleet_view.hotspot_circles(api.hotspots())
        except ApiError as exc:
            # The fleet is still worth seeing when the hotspot feed fails.
            st.warning(f"Hotspots unavailable: {exc}")

    counts = fleet_view.health_counts(machines)
    tiles = st.columns(len(counts) + 1)
    tiles[0].metric("Machines", len(machines))
    for tile, (health, count) in zip(tiles[1:], counts.items(), strict=True):
        tile.metric(fleet_view.HEALTH_LABELS[health], count)

    map_col, alerts_col = st.columns([3, 2])
    with map_col:
        heat_days = None
        if officials:
            heat_days = HEAT_DAYS[st.radio("Dispense heat over the last", list(HEAT_DAYS),
                                           index=1, horizontal=True, key="heat_days")]
        layers, heat_legend = area_layers(api, hotspots, heat_days)
        points = fleet_view.machine_points(machines)
        deck = fleet_deck(points, fleet_view.view_centre(points), layers)
        picked = st.pydeck_chart(
            deck, height=520, on_select="rerun", selection_mode="single-object", key="fleet_map"
        )
        st.html(f'<div class="nx-legend">{fleet_view.legend_html()}</div>')
        if heat_legend:
            st.caption(heat_legend)
        if hotspots:
            st.caption("Circles ringed in black: hotspots, listed beside the map.")
        names = {m.id: m.name for m in machines}
        for machine_id in fleet_view.selected_machine_ids(picked):
            st.page_link(
                MACHINE_PAGE,
                label=f"Open {names.get(machine_id, machine_id)}",
                icon=":material/search:",
                query_params={"machine": machine_id},
            )
    with alerts_col:
        st.subheader(f"Open alerts ({alerts.count})")
        rows = fleet_view.alert_rows(alerts.data, names)
        if rows:
            st.dataframe(rows, hide_index=True, key="open_alerts_table")
        else:
            st.success("No open alerts.")
        if hotspots:
            st.subheader(f"Hotspots ({len(hotspots)})")
            for circle in hotspots:
                st.text(f"◯ {circle['label']}")

    st.subheader("Machines")
    st.dataframe(fleet_view.machine_rows(machines), hide_index=True, key="machines_table")


live_fleet()
