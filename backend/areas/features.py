"""Read a GeoJSON FeatureCollection of named areas and find the area around a point (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backend.notify.geo import Polygon, contains, parse_area

NAME_MAX = 64
MAX_AREAS = 1000


@dataclass(frozen=True)
class AreaShape:
    """A named area: its GeoJSON geometry as given and the parsed polygons."""

    name: str
    geometry: dict[str, Any]
    polygons: tuple[Polygon, ...]


def parse_feature_collection(document: Any) -> list[AreaShape]:
    """Return the named areas of a FeatureCollection, sorted by name (ValueError if malformed).

    Each feature needs ``properties.name`` (1-64 characters, unique) and a
    Polygon or MultiPolygon geometry in longitude/latitude.
    """
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ValueError("the file must be a GeoJSON FeatureCollection")
    features = document.get("features")
    if not isinstance(features, list) or not features:
        raise ValueError("the FeatureCollection has no features")
    if len(features) > MAX_AREAS:
        raise ValueError(f"more than {MAX_AREAS} areas")
    shapes: dict[str, AreaShape] = {}
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise ValueError(f"feature {number} is not a GeoJSON Feature")
        properties = feature.get("properties")
        name = properties.get("name") if isinstance(properties, dict) else None
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX:
            raise ValueError(f"feature {number} needs properties.name of 1-{NAME_MAX} characters")
        name = name.strip()
        if name in shapes:
            raise ValueError(f"area {name!r} appears twice")
        try:
            polygons = parse_area(feature.get("geometry"))
        except ValueError as exc:
            raise ValueError(f"area {name!r}: {exc}") from None
        shapes[name] = AreaShape(name, feature["geometry"], polygons)
    return [shapes[n] for n in sorted(shapes)]


def area_of(shapes: Sequence[AreaShape], lat: float, lon: float) -> str | None:
    """Return the name of the first area (by name) containing the point, or None."""
    for shape in shapes:
        if contains(shape.polygons, lon, lat):
            return shape.name
    return None
