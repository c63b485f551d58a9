"""The pydeck map of one hotspot: named areas (outlined and labelled), its circle, the machines.

The area outlines and names are layers of their own, so the map still says
where things are when basemap tiles cannot load (an offline office).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydeck as pdk

from console.fleet_view import HOTSPOT_FILL, HOTSPOT_LINE, ViewCentre
from console.hotspot_view import AREA_LINE

TOOLTIP = {"html": "<b>{name}</b><br/>{where}"}


def hotspot_deck(
    areas: Sequence[dict[str, Any]],
    labels: Sequence[dict[str, Any]],
    circle: dict[str, Any],
    machines: Sequence[dict[str, Any]],
    centre: ViewCentre,
) -> pdk.Deck:
    """Return a deck: area polygons, their names, the cluster's circle, then the machines."""
    layers = [
        pdk.Layer("PolygonLayer", data=list(areas), id="areas", get_polygon="polygon",
                  get_fill_color="fill", get_line_color=list(AREA_LINE),
                  line_width_min_pixels=1, stroked=True, filled=True, pickable=False),
        pdk.Layer("TextLayer", data=list(labels), id="area_names",
                  get_position=["lon", "lat"], get_text="name", get_size=13,
                  get_color=[40, 40, 40, 220], pickable=False),
        pdk.Layer("ScatterplotLayer", data=[circle], id="cluster",
                  get_position=["lon", "lat"], get_radius="radius_m",
                  get_fill_color=list(HOTSPOT_FILL), get_line_color=list(HOTSPOT_LINE),
                  line_width_min_pixels=2, stroked=True, pickable=False),
        pdk.Layer("ScatterplotLayer", data=list(machines), id="machines",
                  get_position=["lon", "lat"], get_fill_color="colour", get_radius="radius",
                  radius_min_pixels=4, radius_max_pixels=20, get_line_color=[255, 255, 255],
                  line_width_min_pixels=1, stroked=True, pickable=True),
    ]
    view = pdk.ViewState(latitude=centre.lat, longitude=centre.lon, zoom=centre.zoom, pitch=0)
    return pdk.Deck(layers=layers, initial_view_state=view, map_provider="carto",
                    map_style="light", tooltip=TOOLTIP)
