"""The JSON a notification carries: pure, and never individual dispenses."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from backend.models import AlertType
from backend.notify.facts import AlertEvent, AlertFacts

# The hotspot figures a receiver gets; the rest of the alert's details (machine
# lists, statistics) stay in the database.
HOTSPOT_FIELDS = {
    "lat": "centre_lat",
    "lon": "centre_lon",
    "radius_km": "radius_km",
    "observed": "observed",
    "expected": "expected",
    "p_value": "p_value",
    "recurrence_interval_days": "recurrence_interval_days",
    "start": "start",
    "end": "end",
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def console_path(facts: AlertFacts) -> str:
    """Return the console page that shows the alert (relative to the console's URL)."""
    if facts.machine_id is not None:
        return f"/machine?machine={facts.machine_id}"
    return "/alerts"


def hotspot_figures(details: Any) -> dict[str, Any]:
    """Return a hotspot's centre, radius and statistics from its alert details."""
    if not isinstance(details, dict):
        return {}
    return {out: details[name] for name, out in HOTSPOT_FIELDS.items() if name in details}


def alert_payload(
    facts: AlertFacts, event: AlertEvent, *, at: datetime, areas: Collection[str] = ()
) -> dict[str, Any]:
    """Return the stored body of a notification about ``facts`` after ``event``."""
    body: dict[str, Any] = {
        "event": f"alert.{event.value}",
        "at": at.isoformat(),
        "alert": {
            "id": facts.id,
            "type": facts.type,
            "severity": facts.severity,
            "subject": facts.subject,
            "machine_id": facts.machine_id,
            "areas": sorted(areas),
            "message": facts.message,
            "status": facts.status,
            "opened_at": _iso(facts.opened_at),
            "acknowledged_at": _iso(facts.acknowledged_at),
            "acknowledged_by": facts.acknowledged_by,
            "resolved_at": _iso(facts.resolved_at),
            "resolved_by": facts.resolved_by,
        },
        "console_path": console_path(facts),
    }
    if facts.type == AlertType.OVERDOSE_HOTSPOT.value:
        body["hotspot"] = hotspot_figures(facts.details)
    return body


def route_test_payload(route_name: str, *, at: datetime) -> dict[str, Any]:
    """Return the body of a route's test message."""
    return {
        "event": "test",
        "at": at.isoformat(),
        "message": f"Test message for notification route {route_name}",
        "console_path": "/alerts",
    }
