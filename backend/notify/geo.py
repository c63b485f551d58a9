"""GeoJSON Polygon and MultiPolygon: check one, and say whether a point lies inside (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

Ring = tuple[tuple[float, float], ...]
"""(lon, lat) positions, first equal to last."""
Polygon = tuple[Ring, ...]
"""The exterior ring, then any holes."""

MAX_POSITIONS = 10_000


def parse_area(geometry: Any) -> tuple[Polygon, ...]:
    """Return the polygons of a GeoJSON Polygon or MultiPolygon geometry (ValueError if not one)."""
    if not isinstance(geometry, dict):
        raise ValueError("the area must be a GeoJSON geometry object")
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coordinates]
    elif kind == "MultiPolygon" and isinstance(coordinates, list):
        polygons = coordinates
    else:
        raise ValueError("the area must be a GeoJSON Polygon or MultiPolygon")
    parsed = tuple(_polygon(p) for p in polygons)
    if not parsed:
        raise ValueError("a MultiPolygon needs at least one polygon")
    if sum(len(ring) for polygon in parsed for ring in polygon) > MAX_POSITIONS:
        raise ValueError(f"the area has more than {MAX_POSITIONS} positions")
    return parsed


def _polygon(rings: Any) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise ValueError("a polygon is a list of linear rings")
    return tuple(_ring(r) for r in rings)


def _ring(positions: Any) -> Ring:
    if not isinstance(positions, list) or len(positions) < 4:
        raise ValueError("a linear ring has at least four positions")
    ring = tuple(_position(p) for p in positions)
    if ring[0] != ring[-1]:
        raise ValueError("a linear ring ends where it starts")
    return ring


def _position(value: Any) -> tuple[float, float]:
    if (not isinstance(value, list) or len(value) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value[:2])):
        raise ValueError("a position is [longitude, latitude]")
    lon, lat = float(value[0]), float(value[1])
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
            and -90 <= lat <= 90):
        raise ValueError("a position is [longitude, latitude] within range")
    return lon, lat


def _in_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Ray casting: count the edges a ray eastward from the point crosses."""
    inside = False
    for (x1, y1), (x2, y2) in pairwise(ring):
        if (y1 > lat) != (y2 > lat):
            crossing = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < crossing:
                inside = not inside
    return inside


def contains(polygons: Sequence[Polygon], lon: float, lat: float) -> bool:
    """Say whether (lon, lat) lies inside one of ``polygons`` (and outside its holes)."""
    for exterior, *holes in polygons:
        if _in_ring(lon, lat, exterior) and not any(_in_ring(lon, lat, h) for h in holes):
            return True
    return False
