"""Notification routes and deliveries as table rows, and the form's fields as an API body (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from console.api_models import Delivery, NotificationRoute


def route_rows(routes: Iterable[NotificationRoute]) -> list[dict[str, Any]]:
    """Return one row per route: what it takes and where it goes (no secret, no full target)."""
    return [
        {
            "id": r.id,
            "name": r.name,
            "channel": r.channel,
            "to": r.destination,
            "types": ", ".join(r.alert_types) or "all",
            "min severity": r.min_severity,
            "areas": ", ".join(r.areas) or "all",
            "escalates": (f"after {r.escalate_after_min} min to route {r.escalate_to_route_id}"
                          if r.escalate_to_route_id else ""),
            "quiet hours": (f"{r.quiet_start}–{r.quiet_end} {r.quiet_tz or 'UTC'}"
                            if r.quiet_start else ""),
            "enabled": r.enabled,
        }
        for r in routes
    ]


def delivery_rows(deliveries: Iterable[Delivery]) -> list[dict[str, Any]]:
    """Return one row per delivery, newest first as the API gives them."""
    return [
        {
            "created": d.created_at,
            "route": d.route_id,
            "event": d.event,
            "alert": d.alert_id,
            "state": d.state,
            "attempts": d.attempts,
            "last error": d.last_error or "",
            "next attempt": d.next_attempt_at if d.state == "pending" else None,
            "delivered": d.delivered_at,
            "delivery id": d.delivery_id,
        }
        for d in deliveries
    ]


def route_body(*, name: str, channel: str, target: str, secret: str, alert_types: list[str],
               min_severity: str, areas_text: str) -> dict[str, Any]:
    """Return the API body of a new route from the form's fields (blank secret: none)."""
    body: dict[str, Any] = {
        "name": name.strip(), "channel": channel, "target": target.strip(),
        "alert_types": alert_types, "min_severity": min_severity,
        "areas": [a.strip() for a in areas_text.split(",") if a.strip()],
    }
    if secret.strip():
        body["secret"] = secret.strip()
    return body
