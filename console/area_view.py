"""Turn the API's area GeoJSON into map rows: outlines, name labels and the dispense heat.

Pure functions only. The counts come already suppressed from the backend's
export ("<5", "suppressed"); nothing here looks at single dispenses or
undoes a suppression, it only picks colours and words for what it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from console.api_models import AreaCollection

RGBA = tuple[int, int, int, int]
Ring = list[list[float]]

OUTLINE_COLOUR: RGBA = (55, 65, 95, 255)
"""Dark slate: readable on a blank canvas and on a light basemap alike."""
NAME_COLOUR: RGBA = (40, 45, 60, 255)

# ColorBrewer "Blues" (5 classes, light to dark): a single hue that no machine state
# uses, ordered by lightness, so it reads for every kind of colour vision.
HEAT_CLASSES: tuple[RGBA, ...] = (
    (239, 243, 255, 150),
    (189, 215, 231, 160),
    (107, 174, 214, 170),
    (49, 130, 189, 180),
    (8, 81, 156, 190),
)
SUPPRESSED_COLOUR: RGBA = (210, 210, 210, 120)
"""A complementary-suppressed area: its count is hidden, so it gets no shade of blue."""
SUPPRESSED_TEXT = "suppressed"


@dataclass(frozen=True, slots=True)
class HeatEntry:
    """What the heat layer says of one area: the published total and its colour class."""

    shown: str
    colour: RGBA


def outer_rings(geometry: dict[str, Any] | None) -> list[Ring]:
    """Return the outer ring of each polygon of a Polygon or MultiPolygon (else nothing)."""
    if not geometry:
        return []
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if not isinstance(coords, list):
        return []
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    return [
        [[float(x), float(y)] for x, y, *_ in polygon[0]]
        for polygon in polygons
        if isinstance(polygon, list) and polygon and len(polygon[0]) >= 3
    ]


def ring_area_centroid(ring: Ring) -> tuple[float, float, float]:
    """Return (|area|, lon, lat) of a ring's centroid (shoelace formula; degrees are fine here)."""
    twice_area = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True):
        cross = x0 * y1 - x1 * y0
        twice_area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if abs(twice_area) < 1e-12:  # degenerate: fall back to the mean vertex
        return 0.0, sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)
    return abs(twice_area) / 2, cx / (3 * twice_area), cy / (3 * twice_area)


def label_position(rings: Sequence[Ring]) -> tuple[float, float] | None:
    """Return (lon, lat) where an area's name goes: the centroid of its largest polygon."""
    if not rings:
        return None
    _, lon, lat = max(ring_area_centroid(ring) for ring in rings)
    return lon, lat


def area_rows(collection: AreaCollection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (outline rows, one per polygon; name rows, one per area with a polygon)."""
    outlines: list[dict[str, Any]] = []
    names: list[dict[str, Any]] = []
    for feature in collection.features:
        name = str(feature.properties.get("name") or "")
        rings = outer_rings(feature.geometry)
        outlines.extend({"name": name, "path": ring} for ring in rings)
        where = label_position(rings)
        if where is not None and name:
            names.append({"name": name, "lon": where[0], "lat": where[1]})
    return outlines, names


def heat_entry(total: object, peak: int) -> HeatEntry:
    """Return the words and colour for an area's published total.

    An integer gets one of five classes of the largest total ``peak``; "<k"
    (a small count) gets the lightest class; anything else is suppressed.
    """
    if isinstance(total, int) and not isinstance(total, bool):
        if total <= 0:
            return HeatEntry("0", (0, 0, 0, 0))
        index = min(len(HEAT_CLASSES) - 1, (total * len(HEAT_CLASSES) - 1) // max(peak, 1))
        return HeatEntry(str(total), HEAT_CLASSES[index])
    if isinstance(total, str) and total.startswith("<"):
        return HeatEntry(total, HEAT_CLASSES[0])
    return HeatEntry(SUPPRESSED_TEXT, SUPPRESSED_COLOUR)


def heat_rows(collection: AreaCollection) -> list[dict[str, Any]]:
    """Return one filled polygon per area polygon, coloured by the area's published total."""
    totals = [f.properties.get("total") for f in collection.features]
    peak = max((t for t in totals if isinstance(t, int) and not isinstance(t, bool)), default=0)
    rows: list[dict[str, Any]] = []
    for feature in collection.features:
        entry = heat_entry(feature.properties.get("total"), peak)
        name = str(feature.properties.get("name") or "")
        rows.extend(
            {"name": name, "polygon": ring, "dispenses": entry.shown, "colour": list(entry.colour)}
            for ring in outer_rings(feature.geometry)
        )
    return rows


def heat_labels(collection: AreaCollection) -> dict[str, str]:
    """Return each area's published total as text, for the area name labels."""
    peak = 0  # the class does not matter here, only the words
    return {
        str(f.properties.get("name") or ""): heat_entry(f.properties.get("total"), peak).shown
        for f in collection.features
    }


def heat_legend(k: int | None) -> str:
    """Return the heat layer's legend in words."""
    small = f" Areas with fewer than {k} show \"<{k}\"; a grey area's count is hidden so that " \
        "a small one cannot be worked out from the totals." if k else ""
    return (
        "Blue shading: naloxone dispenses per area over the period, darker is more. "
        "Counted by area, never by single dispense." + small
    )


def labelled(names: Sequence[dict[str, Any]], totals: dict[str, str]) -> list[dict[str, Any]]:
    """Return the name rows with a ``label``: the name, and under it the published total.

    A total of 0 is left out: a city of zeros would bury the names that matter.
    """
    return [
        {**row, "label": f"{row['name']}\n{totals[row['name']]}"
         if totals.get(row["name"], "0") != "0" else row["name"]}
        for row in names
    ]
