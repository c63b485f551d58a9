"""Build the pydeck map of one van's route: the path, numbered stops and the depot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydeck as pdk

from console.fleet_view import view_centre
from console.restock_view import DEPOT_COLOUR

PATH_COLOUR = [0, 114, 178, 180]
STOP_RADIUS_PX = 13
TOOLTIP = {"html": "<b>{number}. {name}</b><br/>{arrival} · {urgency}"}


def route_deck(path: Sequence[Sequence[float]], stops: Sequence[dict[str, Any]]) -> pdk.Deck:
    """Return a deck with the van's path under one numbered dot per stop and the depot."""
    depot = {"lon": path[0][0], "lat": path[0][1], "number": "D", "name": "Depot",
             "arrival": "start and end", "urgency": ""}
    layers = [
        pdk.Layer("PathLayer", data=[{"path": [list(p) for p in path]}], id="route",
                  get_path="path", get_color=PATH_COLOUR, width_min_pixels=3,
                  pickable=False),
        pdk.Layer("ScatterplotLayer", data=[depot], id="depot", get_position=["lon", "lat"],
                  get_fill_color=DEPOT_COLOUR, radius_min_pixels=STOP_RADIUS_PX - 3,
                  radius_max_pixels=STOP_RADIUS_PX - 3, get_radius=1, pickable=True),
        pdk.Layer("ScatterplotLayer", data=list(stops), id="stops", get_position=["lon", "lat"],
                  get_fill_color="colour", get_line_color=[255, 255, 255, 255], stroked=True,
                  line_width_min_pixels=2, get_radius=1, radius_min_pixels=STOP_RADIUS_PX,
                  radius_max_pixels=STOP_RADIUS_PX, pickable=True),
        # The stop's number as text on its dot: the order reads without colour.
        pdk.Layer("TextLayer", data=[*stops, depot], id="numbers", get_position=["lon", "lat"],
                  get_text="number", get_size=14, get_color=[255, 255, 255, 255],
                  get_text_anchor="'middle'", get_alignment_baseline="'center'",
                  font_weight=700, pickable=False),
    ]
    centre = view_centre([{"lat": p[1], "lon": p[0]} for p in path])
    view = pdk.ViewState(latitude=centre.lat, longitude=centre.lon, zoom=centre.zoom, pitch=0)
    return pdk.Deck(layers=layers, initial_view_state=view, map_provider="carto",
                    map_style="light", tooltip=TOOLTIP)
