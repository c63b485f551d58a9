"""Turn hotspot API data into what the hotspot page draws (pure: tested without Streamlit).

The plain-words sentences come from the API (``explanation``, ``summary``):
one wording for the console, the weekly report and officials' own tools.
A count the API suppressed arrives as null and is shown as ``<k``, never as
a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from console.api_models import AreaCollection, HotspotFeature, HotspotSeries, MachinePublic
from console.fleet_view import ViewCentre, view_centre

DEFAULT_K = 5
"""Shown as ``<5`` when the API says a count is small without naming its threshold."""

STATUS_LABELS = {"open": "Open", "acknowledged": "Acknowledged", "resolved": "Resolved"}

COVERED_FILL = (220, 20, 60, 40)
AREA_FILL = (70, 130, 180, 12)
AREA_LINE = (70, 70, 70, 160)
IN_CLUSTER = (220, 20, 60, 240)
OUTSIDE = (120, 120, 120, 150)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def observed_text(props: dict[str, Any]) -> str:
    """Return the observed count as shown: the number, or ``<k`` when the API suppressed it."""
    observed = props.get("observed")
    if isinstance(observed, int) and not isinstance(observed, bool):
        return str(observed)
    k = props.get("suppression_k")
    return f"<{k if isinstance(k, int) else DEFAULT_K}"


def expected_text(props: dict[str, Any]) -> str:
    """Return the expected count with one decimal, or a dash."""
    expected = _number(props.get("expected"))
    return f"{expected:.1f}" if expected is not None else "–"


def window_text(props: dict[str, Any]) -> str:
    """Return the cluster's window as ``2026-03-29 – 2026-03-31 (3 days)``."""
    start, end = props.get("start"), props.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        return "–"
    try:
        days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
    except ValueError:
        return f"{start} – {end}"
    return end if days == 1 else f"{start} – {end} ({days} days)"


def areas_text(props: dict[str, Any]) -> str:
    """Return the named areas a cluster covers, or a note that it covers none."""
    areas = [a for a in props.get("areas") or [] if isinstance(a, str)]
    return ", ".join(areas) if areas else "no named area"


def hotspot_label(feature: HotspotFeature) -> str:
    """Return a one-line label for picking a cluster: areas, window, status."""
    props = feature.properties
    status = STATUS_LABELS.get(str(props.get("status")), str(props.get("status") or ""))
    return f"#{feature.id} · {areas_text(props)} · {window_text(props)} · {status}"


def hotspot_rows(features: Iterable[HotspotFeature]) -> list[dict[str, Any]]:
    """Return table rows of the clusters, open ones first, newest window first."""
    ordered = sorted(features, key=lambda f: str(f.properties.get("end") or ""), reverse=True)
    ordered.sort(key=lambda f: f.properties.get("status") == "resolved")
    return [
        {
            "id": f.id,
            "status": STATUS_LABELS.get(str(f.properties.get("status")), ""),
            "areas": areas_text(f.properties),
            "days": window_text(f.properties),
            "observed": observed_text(f.properties),
            "expected": expected_text(f.properties),
            "machines": len(f.properties.get("machines") or []),
            "how unusual": str(f.properties.get("explanation") or ""),
        }
        for f in ordered
    ]


def cluster_machine_points(feature: HotspotFeature, machines: Iterable[MachinePublic]
                           ) -> list[dict[str, Any]]:
    """Return map points of the machines, the cluster's in red and the rest in grey."""
    inside = {m for m in feature.properties.get("machines") or [] if isinstance(m, str)}
    return [
        {"id": m.id, "name": m.name, "lat": m.lat, "lon": m.lon,
         "in_cluster": m.id in inside,
         "where": "in the cluster" if m.id in inside else "outside",
         "colour": list(IN_CLUSTER if m.id in inside else OUTSIDE),
         "radius": 140 if m.id in inside else 80}
        for m in machines
        if m.lat is not None and m.lon is not None
    ]


def _rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    """Return the outer rings of a Polygon or MultiPolygon."""
    coords = geometry.get("coordinates") or []
    if geometry.get("type") == "Polygon":
        return [coords[0]] if coords else []
    if geometry.get("type") == "MultiPolygon":
        return [poly[0] for poly in coords if poly]
    return []


def area_polygons(areas: AreaCollection, covered: Sequence[str]) -> list[dict[str, Any]]:
    """Return one pydeck polygon per outer ring, the covered areas filled."""
    out: list[dict[str, Any]] = []
    for feature in areas.features:
        name = str(feature.properties.get("name") or "")
        hit = name in covered
        for ring in _rings(feature.geometry or {}):
            out.append({"name": name, "polygon": ring, "covered": hit,
                        "fill": list(COVERED_FILL if hit else AREA_FILL)})
    return out


def area_labels(polygons: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one text label per area at the mean of its largest ring's corners."""
    best: dict[str, list[list[float]]] = {}
    for poly in polygons:
        if len(poly["polygon"]) > len(best.get(poly["name"], [])):
            best[poly["name"]] = poly["polygon"]
    labels = []
    for name, ring in best.items():
        corners = ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring
        if corners:
            labels.append({"name": name,
                           "lon": sum(p[0] for p in corners) / len(corners),
                           "lat": sum(p[1] for p in corners) / len(corners)})
    return labels


def series_rows(series: HotspotSeries) -> list[dict[str, Any]]:
    """Return one row per day: the count (None when suppressed), its text and the expected level.

    A suppressed day is drawn as a grey mark at zero and says ``<k`` in its tooltip.
    """
    k = series.suppression_k or DEFAULT_K
    rows = []
    for day, observed, small, expected in zip(series.days, series.observed, series.small,
                                              series.expected, strict=True):
        hidden = f"<{k}" if small else "suppressed"
        shown = str(observed) if observed is not None else hidden
        rows.append({
            "day": day.isoformat(),
            "dispenses": observed,
            "shown": shown,
            "suppressed": observed is None,
            "expected": round(expected, 2),
            "in_window": series.window_start <= day <= series.window_end,
        })
    return rows


def window_band(series: HotspotSeries) -> dict[str, str]:
    """Return the shaded window's first and last day (ISO), the last widened to its day's end."""
    return {"start": series.window_start.isoformat(), "end": series.window_end.isoformat()}


KM_PER_DEGREE = 111.0


def cluster_circle(feature: HotspotFeature) -> dict[str, Any]:
    """Return the cluster's circle for the map (a one-machine cluster drawn 500 m wide)."""
    lon, lat = feature.geometry.coordinates
    radius_km = _number(feature.properties.get("radius_km")) or 0.0
    return {"lat": lat, "lon": lon, "radius_m": 1000.0 * max(radius_km, 0.5)}


def cluster_view(feature: HotspotFeature) -> ViewCentre:
    """Return a view that shows the circle with a margin around it (a few km at least)."""
    circle = cluster_circle(feature)
    reach = max(circle["radius_m"] / 1000.0, 1.5) * 2 / KM_PER_DEGREE
    corners = [{"lat": circle["lat"] + dy, "lon": circle["lon"] + dx}
               for dy in (-reach, reach) for dx in (-reach, reach)]
    return view_centre(corners)
