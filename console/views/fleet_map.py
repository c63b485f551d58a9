"""Fleet map: machines coloured by state, with the open alerts beside them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from console import fleet_view, session
from console.api_models import AlertStatus
from console.client import ApiError
from console.map_deck import fleet_deck
from console.roles import Action

MACHINE_PAGE = Path(__file__).resolve().parent / "machine.py"

st.title("Fleet map")


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
    if session.may(Action.VIEW_HOTSPOTS):
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
        points = fleet_view.machine_points(machines)
        deck = fleet_deck(points, fleet_view.view_centre(points), hotspots)
        picked = st.pydeck_chart(
            deck, height=520, on_select="rerun", selection_mode="single-object", key="fleet_map"
        )
        st.caption(fleet_view.legend_markdown())
        names = {m.id: m.name for m in machines}
        for machine_id in fleet_view.selected_machine_ids(picked):
            st.page_link(
                MACHINE_PAGE,
                label=f"Open {names.get(machine_id, machine_id)}",
                icon="🔎",
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
