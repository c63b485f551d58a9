"""Build the pydeck map of the fleet from map points (see ``fleet_view.machine_points``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydeck as pdk

from console.fleet_view import ViewCentre

MARKER_RADIUS_M = 180
MARKER_MIN_PX = 6
MARKER_MAX_PX = 30
TOOLTIP = {
    "html": "<b>{name}</b><br/>{site}<br/>{health_label} · {stock}<br/>open alerts: {open_alerts}",
}


def fleet_deck(points: Sequence[dict[str, Any]], centre: ViewCentre) -> pdk.Deck:
    """Return a deck with one dot per machine, coloured by health, with a tooltip."""
    layer = pdk.Layer(
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
        layers=[layer],
        initial_view_state=view,
        map_provider="carto",
        map_style="light",
        tooltip=TOOLTIP,
    )
