"""Build the pydeck map of the fleet from map points (see ``fleet_view.machine_points``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydeck as pdk

from console.fleet_view import HOTSPOT_FILL, HOTSPOT_LINE, ViewCentre

MARKER_RADIUS_M = 180
MARKER_MIN_PX = 6
MARKER_MAX_PX = 30
TOOLTIP = {
    "html": "<b>{name}</b><br/>{site}<br/>{health_label} · {stock}<br/>open alerts: {open_alerts}",
}


def hotspot_layer(circles: Sequence[dict[str, Any]]) -> pdk.Layer:
    """Return translucent circles for hotspot areas (listed beside the map, not pickable)."""
    return pdk.Layer(
        "ScatterplotLayer",
        data=list(circles),
        id="hotspots",
        get_position=["lon", "lat"],
        get_radius="radius_m",
        get_fill_color=list(HOTSPOT_FILL),
        get_line_color=list(HOTSPOT_LINE),
        line_width_min_pixels=2,
        stroked=True,
        pickable=False,
    )


def fleet_deck(
    points: Sequence[dict[str, Any]],
    centre: ViewCentre,
    hotspots: Sequence[dict[str, Any]] = (),
) -> pdk.Deck:
    """Return a deck with hotspot circles under one dot per machine, coloured by health."""
    machines = pdk.Layer(
        "ScatterplotLayer",
        data=list(points),
        id="machines",
        get_position=["lon", "lat"],
        get_fill_color="colour",
        get_line_color=[255, 255, 255, 255],
        line_width_min_pixels=1,
        stroked=True,
        get_radius=MARKER_RADIUS_M,
        radius_min_pixels=MARKER_MIN_PX,
        radius_max_pixels=MARKER_MAX_PX,
        pickable=True,
    )
    view = pdk.ViewState(latitude=centre.lat, longitude=centre.lon, zoom=centre.zoom, pitch=0)
    # Carto's light basemap needs no API token.
    return pdk.Deck(
        # Hotspots first, so the machines inside them stay visible and pickable.
        layers=[hotspot_layer(hotspots), machines] if hotspots else [machines],
        initial_view_state=view,
        map_provider="carto",
        map_style="light",
        tooltip=TOOLTIP,
    )
