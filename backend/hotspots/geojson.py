"""Hotspot alerts as a GeoJSON FeatureCollection: areas, never individual dispenses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from backend.models import Alert

AREA_FIELDS = (
    "detector",
    "centre_machine",
    "radius_km",
    "machines",
    "start",
    "end",
    "observed",
    "expected",
    "p_value",
    "recurrence_interval_days",
    "statistic",
)


def hotspot_feature(alert: Alert) -> dict[str, Any] | None:
    """Return one alert's area as a GeoJSON Feature (None when it has no coordinates)."""
    details = alert.details or {}
    lat, lon = details.get("lat"), details.get("lon")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    properties: dict[str, Any] = {
        "alert_id": alert.id,
        "subject": alert.subject,
        "status": alert.status,
        "severity": alert.severity,
        "message": alert.message,
        "opened_at": alert.opened_at.isoformat() if alert.opened_at else None,
    }
    properties.update({k: details.get(k) for k in AREA_FIELDS})
    # The named areas the machines stand in (alerts from before areas existed: none).
    properties["areas"] = details.get("areas") or []
    return {
        "type": "Feature",
        "id": alert.id,
        "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
        "properties": properties,
    }


def feature_collection(alerts: Iterable[Alert]) -> dict[str, Any]:
    """Return the alerts' areas as a FeatureCollection."""
    features = [f for f in (hotspot_feature(a) for a in alerts) if f is not None]
    return {"type": "FeatureCollection", "features": features}
