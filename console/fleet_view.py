"""Turn API data into what the pages draw: map points, colours, counts, table rows.

Pure functions only, so the look of the console is tested without Streamlit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.api_models import AlertPublic, Health, HotspotCollection, MachinePublic

RGBA = tuple[int, int, int, int]

# Okabe and Ito's palette for colour-blind readers (and a neutral grey for offline);
# opaque, so a marker keeps its exact colour over the heat layer. The map also writes
# each state beside its marker: colour is never the only cue.
HEALTH_COLOURS: dict[Health, RGBA] = {
    Health.OK: (0, 158, 115, 255),  # bluish green
    Health.LOW_STOCK: (230, 159, 0, 255),  # orange
    Health.EMPTY: (213, 94, 0, 255),  # vermillion
    Health.OFFLINE: (120, 120, 120, 255),  # grey
    Health.ALARM: (204, 121, 167, 255),  # reddish purple
}

HEALTH_LABELS: dict[Health, str] = {
    Health.OK: "OK",
    Health.LOW_STOCK: "Low stock",
    Health.EMPTY: "Empty",
    Health.OFFLINE: "Offline",
    Health.ALARM: "Alarm",
}

# Worst first: a machine someone must visit now sorts above one that is fine.
HEALTH_ORDER: tuple[Health, ...] = (
    Health.ALARM,
    Health.EMPTY,
    Health.OFFLINE,
    Health.LOW_STOCK,
    Health.OK,
)

SEVERITY_ORDER: dict[str, int] = {"critical": 0, "high": 1, "warning": 2, "medium": 2, "info": 3}

DEFAULT_CENTRE = (39.9526, -75.1652)
"""Philadelphia City Hall: where the map opens when no machine has coordinates."""


@dataclass(frozen=True, slots=True)
class ViewCentre:
    lat: float
    lon: float
    zoom: float


def hex_colour(rgba: RGBA) -> str:
    """Return ``#rrggbb`` for an RGBA tuple (legends want CSS colours)."""
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def legend_html() -> str:
    """Return the map legend as HTML: each state's exact marker colour and its name."""
    return " ".join(
        f'<span style="white-space:nowrap;margin-right:0.8em">'
        f'<span style="color:{hex_colour(HEALTH_COLOURS[h])}">●</span> {HEALTH_LABELS[h]}</span>'
        for h in HEALTH_ORDER
    )


def stock_totals(machine: MachinePublic) -> tuple[int, int]:
    """Return (items in stock, total capacity) across a machine's slots."""
    count = sum(slot.count for slot in machine.slots)
    capacity = sum(slot.capacity or 0 for slot in machine.slots)
    return count, capacity


def stock_text(machine: MachinePublic) -> str:
    """Return a short stock summary such as ``"12/20 items"``."""
    count, capacity = stock_totals(machine)
    return f"{count}/{capacity} items" if capacity else f"{count} items"


def machine_points(machines: Iterable[MachinePublic]) -> list[dict[str, Any]]:
    """Return one map point per machine with coordinates, coloured by health."""
    points: list[dict[str, Any]] = []
    for machine in machines:
        if machine.lat is None or machine.lon is None:
            continue
        points.append(
            {
                "id": machine.id,
                "name": machine.name,
                "site": machine.site or "",
                "lat": machine.lat,
                "lon": machine.lon,
                "health": machine.health.value,
                "health_label": HEALTH_LABELS[machine.health],
                "colour": list(HEALTH_COLOURS[machine.health]),
                "state_text": HEALTH_LABELS[machine.health].upper(),
                "stock": stock_text(machine),
                "open_alerts": machine.open_alerts,
            }
        )
    return points


def view_centre(points: Sequence[dict[str, Any]]) -> ViewCentre:
    """Return a centre and zoom that show every point."""
    if not points:
        return ViewCentre(DEFAULT_CENTRE[0], DEFAULT_CENTRE[1], 11.0)
    lats = [float(p["lat"]) for p in points]
    lons = [float(p["lon"]) for p in points]
    span = max(max(lats) - min(lats), max(lons) - min(lons), 0.005)
    # deck.gl's world is 512 px wide at zoom 0, so a map about 512 px wide shows
    # 360 / 2**z degrees across at zoom z; leave a margin.
    zoom = max(2.0, min(15.0, math.log2(360.0 / (span * 1.6))))
    return ViewCentre((max(lats) + min(lats)) / 2, (max(lons) + min(lons)) / 2, round(zoom, 2))


def health_counts(machines: Iterable[MachinePublic]) -> dict[Health, int]:
    """Return how many machines are in each state, every state present, worst first."""
    counts = Counter(machine.health for machine in machines)
    return {health: counts.get(health, 0) for health in HEALTH_ORDER}


def sort_by_urgency(machines: Iterable[MachinePublic]) -> list[MachinePublic]:
    """Return machines worst state first, then by name."""
    rank = {health: i for i, health in enumerate(HEALTH_ORDER)}
    return sorted(machines, key=lambda m: (rank[m.health], m.name.lower(), m.id))


def machine_rows(machines: Iterable[MachinePublic]) -> list[dict[str, Any]]:
    """Return table rows for the machine list, worst state first."""
    return [
        {
            "machine": m.id,
            "name": m.name,
            "site": m.site or "",
            "state": HEALTH_LABELS[m.health],
            "stock": stock_text(m),
            "open alerts": m.open_alerts,
            "last seen": _when(m.last_seen),
        }
        for m in sort_by_urgency(machines)
    ]


def alert_rows(
    alerts: Iterable[AlertPublic], machine_names: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Return table rows for alerts, most severe first and newest first within a severity."""
    names = machine_names or {}
    return [
        {
            "id": alert.id,
            "severity": alert.severity,
            "type": alert.type.replace("_", " "),
            "machine": names.get(alert.machine_id or "", alert.machine_id or alert.subject),
            "status": alert.status.value,
            "opened": _when(alert.opened_at),
            "message": alert.message,
        }
        for alert in urgent_first(alerts)
    ]


def urgent_first(alerts: Iterable[AlertPublic]) -> list[AlertPublic]:
    """Return alerts most severe first and newest first within a severity."""
    ordered = sorted(alerts, key=lambda a: a.opened_at.timestamp(), reverse=True)
    ordered.sort(key=lambda a: SEVERITY_ORDER.get(a.severity.lower(), len(SEVERITY_ORDER)))
    return ordered


def slot_rows(machine: MachinePublic) -> list[dict[str, Any]]:
    """Return one row per slot with its fill level as a fraction of capacity."""
    return [
        {
            "slot": slot.slot,
            "product": slot.product or "",
            "count": slot.count,
            "capacity": slot.capacity,
            "par": slot.par,
            "low at": slot.low_threshold,
            "fill": (slot.count / slot.capacity) if slot.capacity else None,
        }
        for slot in sorted(machine.slots, key=lambda s: s.slot)
    ]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "never"


def alert_label(alert: AlertPublic, machine_names: dict[str, str] | None = None) -> str:
    """Return a one-line label for picking an alert in a list."""
    names = machine_names or {}
    where = names.get(alert.machine_id or "", alert.machine_id or alert.subject)
    return f"#{alert.id} {alert.severity} {alert.type.replace('_', ' ')} at {where}"


def alert_card(alert: AlertPublic, machine_names: dict[str, str] | None = None) -> str:
    """Return one alert as a short markdown card for a phone: what, where, when, status."""
    return (
        f"**{alert_label(alert, machine_names)}**  \n"
        f"{alert.status.value} · opened {_when(alert.opened_at)}  \n{alert.message}"
    )


def alert_types(alerts: Iterable[AlertPublic]) -> list[str]:
    """Return the distinct alert types present, sorted."""
    return sorted({alert.type for alert in alerts})


# A near-black ring around Okabe-Ito yellow: neither a machine state's colour nor the
# heat layer's blues, so a circle never reads as a marker or a shaded area.
HOTSPOT_FILL: RGBA = (240, 228, 66, 70)
HOTSPOT_LINE: RGBA = (25, 25, 25, 230)
DEFAULT_HOTSPOT_RADIUS_KM = 1.0
"""Drawn when an area comes without a radius (a single-machine cluster)."""


def hotspot_circles(collection: HotspotCollection) -> list[dict[str, Any]]:
    """Return one translucent circle per hotspot area, radius in metres, with a label."""
    circles: list[dict[str, Any]] = []
    for feature in collection.features:
        lon, lat = feature.geometry.coordinates
        props = feature.properties
        radius_km = _number(props.get("radius_km"))
        observed = _number(props.get("observed"))
        expected = _number(props.get("expected"))
        p_value = _number(props.get("p_value"))
        parts = [str(props.get("message") or "Hotspot")]
        if observed is not None and expected is not None:
            parts.append(f"{observed:g} dispenses vs {expected:.2f} expected")
        if p_value is not None:
            parts.append(f"p = {p_value:.3f}")
        circles.append(
            {
                "lat": lat,
                "lon": lon,
                # A zero radius (one machine) would vanish on the map; draw a minimum.
                "radius_m": 1000.0 * max(radius_km or 0.0, DEFAULT_HOTSPOT_RADIUS_KM / 2),
                "label": " · ".join(parts),
            }
        )
    return circles


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


EVENT_COLUMNS = ("device_time", "kind", "slot")


def event_rows(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the event log as flat rows: time, kind, slot and the rest as one detail text."""
    rows: list[dict[str, Any]] = []
    for event in events:
        extra = dict(event.get("data") or {})
        extra.update(
            (k, v)
            for k, v in event.items()
            if k not in (*EVENT_COLUMNS, "data", "boot_id", "seq", "received_at")
        )
        rows.append(
            {
                "time": str(event.get("device_time", "")).replace("T", " ")[:19],
                "kind": event.get("kind", ""),
                "slot": event.get("slot"),
                "detail": ", ".join(f"{k}={v}" for k, v in sorted(extra.items())),
            }
        )
    return rows


def machine_label(machine: MachinePublic) -> str:
    """Return a one-line label for picking a machine: name, id and state."""
    return f"{machine.name} ({machine.id}) · {HEALTH_LABELS[machine.health]}"


def selected_machine_ids(state: object, layer: str = "machines") -> list[str]:
    """Return the ids of machines picked on the map, from ``st.pydeck_chart``'s selection state."""
    try:
        objects = state["selection"]["objects"].get(layer, [])  # type: ignore[index]
    except (KeyError, TypeError, AttributeError):
        return []
    return [str(obj["id"]) for obj in objects if isinstance(obj, dict) and "id" in obj]
