"""Hotspots: current and recent dispense clusters, each on a map, in plain words, with a chart."""

from __future__ import annotations

import streamlit as st

from console import charts, hotspot_view, session
from console.api_models import AreaCollection, HotspotFeature
from console.client import ApiError
from console.hotspot_deck import hotspot_deck

st.title("Hotspots")
st.caption(
    "Places where more naloxone went out in the last days than their usual share of the "
    "city's dispenses. Counts under the suppression threshold are shown as “<5”."
)
api = session.api()

recent = st.toggle("Include resolved clusters", value=True, key="hotspots_recent")
try:
    collection = api.hotspots(include_resolved=recent)
    machines = api.all_machines()
except ApiError as exc:
    session.report(exc, "Cannot load the hotspots")
    st.stop()
try:
    areas = api.areas()
except ApiError as exc:
    # The clusters are still worth seeing without the neighbourhood outlines.
    st.warning(f"Named areas unavailable: {exc}")
    areas = AreaCollection()

features = {str(f.id): f for f in collection.features}
if not features:
    st.success("No dispense clusters right now." if not recent
               else "No dispense clusters, current or recent.")
    st.stop()

st.subheader(f"Clusters ({len(features)})")
rows = hotspot_view.hotspot_rows(collection.features)
st.dataframe(rows, hide_index=True, key="hotspots_table")
ids = [str(row["id"]) for row in rows]
chosen_id = st.selectbox(
    "Cluster", ids, format_func=lambda i: hotspot_view.hotspot_label(features[i]),
    key="hotspot_chosen",
)
chosen: HotspotFeature = features[chosen_id]
props = chosen.properties

st.subheader(f"{hotspot_view.areas_text(props)} · {hotspot_view.window_text(props)}")
st.info(str(props.get("explanation") or "No estimate of how unusual this cluster is."),
        icon=":material/my_location:")
if props.get("summary"):
    st.markdown(str(props["summary"]))
tiles = st.columns(4)
tiles[0].metric("Observed", hotspot_view.observed_text(props))
tiles[1].metric("Expected", hotspot_view.expected_text(props))
tiles[2].metric("Days", hotspot_view.window_text(props).split(" (")[0])
tiles[3].metric("Machines", len(props.get("machines") or []))

covered = [a for a in props.get("areas") or [] if isinstance(a, str)]
polygons = hotspot_view.area_polygons(areas, covered)
deck = hotspot_deck(polygons, hotspot_view.area_labels(polygons),
                    hotspot_view.cluster_circle(chosen),
                    hotspot_view.cluster_machine_points(chosen, machines),
                    hotspot_view.cluster_view(chosen))
st.pydeck_chart(deck, height=420, key="hotspot_map")
st.caption(":red[●] machines in the cluster  :gray[●] other machines  "
           "shaded: the named areas it covers")

st.subheader("Daily dispenses against the expected level")
try:
    series = api.hotspot_series(chosen_id)
except ApiError as exc:
    session.report(exc, "Cannot load the cluster's daily counts")
    st.stop()
st.altair_chart(charts.hotspot_chart(hotspot_view.series_rows(series),
                                     hotspot_view.window_band(series)),
                width="stretch", key="hotspot_chart")
st.caption(
    f"Bars: dispenses per day at the cluster's machines ({series.timezone} days); dashed "
    "line: the expected level; shaded: the cluster's window. Grey ticks are days whose count "
    "is suppressed."
)
