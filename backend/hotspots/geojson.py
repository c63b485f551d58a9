"""Hotspot alerts as a GeoJSON FeatureCollection: areas, never individual dispenses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from backend.hotspots.wording import cluster_summary, recurrence_sentence
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


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def hotspot_feature(
    alert: Alert, *, k: int | None = None, replicates: int | None = None
) -> dict[str, Any] | None:
    """Return one alert's area as a GeoJSON Feature (None when it has no coordinates).

    With ``k``, an observed count from 1 to k-1 is null (``observed_small``) and the
    alert's message, which states it, gives way to the summary.
    """
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
    observed = details.get("observed")
    small = small_observed(details, k)
    if small:
        properties["observed"] = None
    properties["observed_small"] = small
    properties["suppression_k"] = k
    expected = _number(details.get("expected"))
    properties["summary"] = cluster_summary(
        observed=None if small else (observed if isinstance(observed, int) else None),
        expected=expected, start=details.get("start"), end=details.get("end"),
        machines=len(details.get("machines") or []), areas=list(properties["areas"]), k=k)
    if small:
        properties["message"] = properties["summary"]
    properties["explanation"] = recurrence_sentence(
        _number(details.get("p_value")), _number(details.get("recurrence_interval_days")),
        replicates=replicates, detector=str(details.get("detector") or "") or None)
    return {
        "type": "Feature",
        "id": alert.id,
        "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
        "properties": properties,
    }


def feature_collection(
    alerts: Iterable[Alert], *, k: int | None = None, replicates: int | None = None
) -> dict[str, Any]:
    """Return the alerts' areas as a FeatureCollection (``k``: suppress small counts)."""
    features = [f for f in (hotspot_feature(a, k=k, replicates=replicates) for a in alerts)
                if f is not None]
    return {"type": "FeatureCollection", "features": features}


def small_observed(details: dict[str, Any], k: int | None) -> bool:
    """Say whether an area alert's observed count is from 1 to k-1 (never for k None)."""
    observed = details.get("observed")
    return (k is not None and isinstance(observed, int) and not isinstance(observed, bool)
            and 0 < observed < k)


def suppressed_alert_view(alert_type: str, message: str, details: dict[str, Any],
                          k: int | None) -> tuple[str, dict[str, Any]]:
    """Return an area alert's message and details as a non-admin may see them.

    An overdose alert whose observed count is under ``k`` gets its count nulled
    and its message, which states it, replaced by the summary that says ``<k``.
    """
    if alert_type != "overdose_hotspot" or not small_observed(details, k):
        return message, details
    shown = {**details, "observed": None, "observed_small": True}
    summary = cluster_summary(
        observed=None, expected=_number(details.get("expected")), start=details.get("start"),
        end=details.get("end"), machines=len(details.get("machines") or []),
        areas=[a for a in details.get("areas") or [] if isinstance(a, str)], k=k)
    return summary, shown
