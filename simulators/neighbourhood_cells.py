"""Draw the demo city's named areas: one cell per neighbourhood centre (pure).

These are not official boundaries. The team draws them: each neighbourhood
in ``simulators.geography`` gets the part of a box around the city that is
nearer its centre than any other centre (a Voronoi cell, distances measured
in a local flat projection), with corners rounded to about 10 m. Every
simulated machine stands near its neighbourhood's centre, so it falls in
that cell. Regenerate the shipped file with
``python -m simulators.neighbourhood_cells > simulators/data/philadelphia-areas.geojson``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backend.areas.features import AreaShape, parse_feature_collection
from simulators.geography import CITY, LAT_RANGE, LON_RANGE, NEIGHBOURHOODS, Neighbourhood

Point = tuple[float, float]
"""(x, y) in the flat projection: longitude scaled by cos(latitude), latitude."""

AREAS_FILE = Path(__file__).parent / "data" / "philadelphia-areas.geojson"
"""The shipped file: what ``nx-backend areas load`` takes for the demo city."""

_SCALE = math.cos(math.radians(sum(LAT_RANGE) / 2))


def _clip(cell: list[Point], inside: Point, outside: Point) -> list[Point]:
    """Keep the part of a convex polygon nearer ``inside`` than ``outside`` (a half-plane)."""
    mid = ((inside[0] + outside[0]) / 2, (inside[1] + outside[1]) / 2)
    normal = (outside[0] - inside[0], outside[1] - inside[1])

    def side(p: Point) -> float:
        return (p[0] - mid[0]) * normal[0] + (p[1] - mid[1]) * normal[1]

    kept: list[Point] = []
    for i, current in enumerate(cell):
        previous = cell[i - 1]
        a, b = side(previous), side(current)
        if (a <= 0) != (b <= 0):  # the edge crosses the dividing line
            t = a / (a - b)
            kept.append((previous[0] + t * (current[0] - previous[0]),
                         previous[1] + t * (current[1] - previous[1])))
        if b <= 0:
            kept.append(current)
    return kept


def cells(places: Sequence[Neighbourhood]) -> list[dict[str, Any]]:
    """Return one GeoJSON Feature per neighbourhood: its cell within the city box."""
    centres = [(p.lon * _SCALE, p.lat) for p in places]
    (lat0, lat1), (lon0, lon1) = LAT_RANGE, LON_RANGE
    box = [(lon0 * _SCALE, lat0), (lon1 * _SCALE, lat0), (lon1 * _SCALE, lat1),
           (lon0 * _SCALE, lat1)]
    features = []
    for i, place in enumerate(places):
        cell = box
        for j, other in enumerate(centres):
            if j != i:
                cell = _clip(cell, centres[i], other)
        ring = [[round(x / _SCALE, 4), round(y, 4)] for x, y in cell]
        ring.append(ring[0])
        features.append({
            "type": "Feature",
            "properties": {"name": place.name},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        })
    return features


def collection() -> dict[str, Any]:
    """Return the demo city's areas as a FeatureCollection, with where they come from."""
    return {
        "type": "FeatureCollection",
        "name": f"{CITY} demo areas",
        "description": ("Drawn by the NaloxNet team for the demo: nearest-centre cells around "
                        "approximate neighbourhood centres, clipped to a box around the city. "
                        "Not official neighbourhood boundaries."),
        "features": cells(NEIGHBOURHOODS),
    }


def demo_areas() -> list[AreaShape]:
    """Return the shipped file's areas, checked as ``nx-backend areas load`` checks them."""
    return parse_feature_collection(json.loads(AREAS_FILE.read_text(encoding="utf-8")))


if __name__ == "__main__":
    print(json.dumps(collection(), indent=1))
