"""Build the pydeck map of the fleet: areas, dispense heat, hotspots, machines and their states.

Layers are drawn bottom to top. The area outlines and names are a layer of
their own so that a browser without basemap tiles (an offline office, a
locked-down network) still shows where things are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pydeck as pdk

from console.area_view import NAME_COLOUR, OUTLINE_COLOUR
from console.fleet_view import HOTSPOT_FILL, HOTSPOT_LINE, ViewCentre

MARKER_RADIUS_M = 180
MARKER_MIN_PX = 7
MARKER_MAX_PX = 30
STATE_TEXT_PX = 12
AREA_NAME_PX = 13
TOOLTIP = {
    "html": "<b>{name}</b><br/>{site}<br/>{health_label} · {stock}<br/>open alerts: {open_alerts}",
}
# Signed-distance-field glyphs with a white halo: text stays readable over any shade.
TEXT_HALO: dict[str, Any] = {}
LABEL_TEXT = [30, 30, 30, 255]


@dataclass(frozen=True, slots=True)
class MapLayers:
    """What the fleet map draws besides the machines (each may be empty)."""

    outlines: Sequence[dict[str, Any]] = field(default_factory=list)
    area_names: Sequence[dict[str, Any]] = field(default_factory=list)
    heat: Sequence[dict[str, Any]] = field(default_factory=list)
    hotspots: Sequence[dict[str, Any]] = field(default_factory=list)


def heat_layer(rows: Sequence[dict[str, Any]]) -> pdk.Layer:
    """Return the areas filled by their published dispense totals (never single dispenses)."""
    return pdk.Layer(
        "PolygonLayer", data=list(rows), id="heat", get_polygon="polygon",
        get_fill_color="colour", filled=True, stroked=False, pickable=False,
    )


def outline_layer(rows: Sequence[dict[str, Any]]) -> pdk.Layer:
    """Return the area borders as unfilled polygons.

    Not a PathLayer: a closed ring repeats its first point, and the zero-length
    last segment's joint can blow up to cover the whole canvas (seen in chromium).
    """
    return pdk.Layer(
        "PolygonLayer", data=list(rows), id="area-outlines", get_polygon="path",
        get_line_color=list(OUTLINE_COLOUR), line_width_min_pixels=2, get_line_width=2,
        filled=False, stroked=True, pickable=False,
    )


def area_name_layer(rows: Sequence[dict[str, Any]]) -> pdk.Layer:
    """Return each area's name (and its dispense total when known) at its centre."""
    return pdk.Layer(
        "TextLayer", data=list(rows), id="area-names", get_position=["lon", "lat"],
        get_text="label", get_size=AREA_NAME_PX, get_color=list(NAME_COLOUR),
        get_text_anchor="'middle'", get_alignment_baseline="'center'", pickable=False,
        **TEXT_HALO,
    )


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
        line_width_min_pixels=3,
        stroked=True,
        pickable=False,
    )


def machine_layer(points: Sequence[dict[str, Any]]) -> pdk.Layer:
    """Return one dot per machine, coloured by state."""
    return pdk.Layer(
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


def state_text_layer(points: Sequence[dict[str, Any]]) -> pdk.Layer:
    """Return each machine's state in words beside its dot: colour is never the only cue."""
    # Only what the words need: the page sends the deck's JSON to the browser every refresh.
    words = [{"lon": p["lon"], "lat": p["lat"], "state_text": p["state_text"]} for p in points]
    return pdk.Layer(
        "TextLayer", data=words, id="machine-states", get_position=["lon", "lat"],
        get_text="state_text", get_size=STATE_TEXT_PX, get_color=LABEL_TEXT,
        get_text_anchor="'start'", get_alignment_baseline="'center'",
        # Right of the dot, clear of it, so the dot keeps its colour all round.
        get_pixel_offset=[MARKER_MIN_PX + 6, 0], pickable=False, **TEXT_HALO,
    )


def fleet_deck(
    points: Sequence[dict[str, Any]],
    centre: ViewCentre,
    layers: MapLayers | None = None,
) -> pdk.Deck:
    """Return a deck: heat, area outlines, hotspots, the words, then the machines on top."""
    extra = layers or MapLayers()
    drawn: list[pdk.Layer] = []
    if extra.heat:
        drawn.append(heat_layer(extra.heat))
    if extra.outlines:
        drawn.append(outline_layer(extra.outlines))
    # Hotspots under the machines, so the machines inside them stay visible and pickable.
    if extra.hotspots:
        drawn.append(hotspot_layer(extra.hotspots))
    if extra.area_names:
        drawn.append(area_name_layer(extra.area_names))
    drawn.append(state_text_layer(points))
    # The dots last: a label running into a neighbour's dot must not hide its colour.
    drawn.append(machine_layer(points))
    view = pdk.ViewState(latitude=centre.lat, longitude=centre.lon, zoom=centre.zoom, pitch=0)
    # Carto's light basemap needs no API token; offline, the area layer stands in for it.
    return pdk.Deck(
        layers=drawn,
        initial_view_state=view,
        map_provider="carto",
        map_style="light",
        tooltip=TOOLTIP,
    )
