"""A notification as words for people: a subject line, plain text and HTML (pure)."""

from __future__ import annotations

import html
from typing import Any


def subject_line(payload: dict[str, Any]) -> str:
    """Return a one-line summary, e.g. ``[NaloxNet] CRITICAL empty_slot opened: m1/slot/1``."""
    alert = payload.get("alert")
    if not isinstance(alert, dict):
        return f"[NaloxNet] {payload.get('message', 'notification')}"
    event = str(payload.get("event", "")).removeprefix("alert.")
    return (f"[NaloxNet] {str(alert.get('severity', '')).upper()} {alert.get('type')} "
            f"{event}: {alert.get('subject')}")


def _lines(payload: dict[str, Any]) -> list[tuple[str, str]]:
    alert = payload.get("alert")
    rows: list[tuple[str, str]] = []
    if isinstance(alert, dict):
        rows.append(("What", str(alert.get("message", ""))))
        rows.append(("Status", str(alert.get("status", ""))))
        for name in ("opened_at", "acknowledged_at", "resolved_at"):
            if alert.get(name):
                rows.append((name.replace("_", " ").capitalize(), str(alert[name])))
        for name in ("acknowledged_by", "resolved_by"):
            if alert.get(name):
                rows.append((name.replace("_", " ").capitalize(), str(alert[name])))
        if alert.get("areas"):
            rows.append(("Areas", ", ".join(map(str, alert["areas"]))))
    else:
        rows.append(("What", str(payload.get("message", ""))))
    items = payload.get("items")
    if isinstance(items, list):
        for item in items:
            held = item.get("alert") if isinstance(item, dict) else None
            if isinstance(held, dict):
                rows.append((str(item.get("event", "")),
                             f"{held.get('severity')}: {held.get('message')}"))
    hotspot = payload.get("hotspot")
    if isinstance(hotspot, dict):
        rows.extend((name.replace("_", " ").capitalize(), str(value))
                    for name, value in hotspot.items())
    if payload.get("console_url"):
        rows.append(("Console", str(payload["console_url"])))
    return rows


def plain_text(payload: dict[str, Any]) -> str:
    """Return the notification as plain text."""
    return "\n".join(f"{label}: {value}" for label, value in _lines(payload)) + "\n"


def html_text(payload: dict[str, Any]) -> str:
    """Return the notification as a small HTML table (every value escaped)."""
    rows = "".join(
        f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in _lines(payload)
    )
    return (f"<html><body><h3>{html.escape(subject_line(payload))}</h3>"
            f"<table>{rows}</table></body></html>")
