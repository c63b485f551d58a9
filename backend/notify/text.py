"""A notification as words for people: a subject line, plain text and HTML (pure)."""

from __future__ import annotations

import html
from typing import Any


def subject_line(payload: dict[str, Any]) -> str:
    """Return a one-line summary, e.g. ``[NaloxNet] CRITICAL empty_slot opened: m1/slot/1``."""
    alert = payload.get("alert")
    report = payload.get("report")
    if isinstance(report, dict):
        return f"[NaloxNet] {report.get('title', 'Weekly situation report')}"
    if not isinstance(alert, dict):
        return f"[NaloxNet] {payload.get('message', 'notification')}"
    event = str(payload.get("event", "")).removeprefix("alert.")
    return (f"[NaloxNet] {str(alert.get('severity', '')).upper()} {alert.get('type')} "
            f"{event}: {alert.get('subject')}")


def _lines(payload: dict[str, Any]) -> list[tuple[str, str]]:
    alert = payload.get("alert")
    rows: list[tuple[str, str]] = []
    report = payload.get("report")
    if isinstance(report, dict):
        rows.extend(_report_lines(report))
    elif isinstance(alert, dict):
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


def _report_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the summary of a weekly report: its counts as the report prints them."""
    rows = [("Week", f"{report.get('start')} to {report.get('end')} ({report.get('timezone')})")]
    dispenses = report.get("dispenses")
    if isinstance(dispenses, dict):
        rows.extend((f"Dispenses, {label}", str(value)) for label, value in dispenses.items())
    clusters = report.get("clusters")
    if isinstance(clusters, list):
        rows.append(("Clusters flagged", str(len(clusters))))
        for cluster in clusters:
            if isinstance(cluster, dict):
                rows.append((f"Cluster #{cluster.get('id')}",
                             f"{cluster.get('summary')} {cluster.get('explanation') or ''}"
                             .strip()))
    rows.append(("Machines out of naloxone", str(report.get("machines_out_of_naloxone"))))
    rows.append(("Small counts", f"1 to {int(report.get('suppression_k', 5)) - 1} "
                                 f"shown as <{report.get('suppression_k')}"))
    return rows


def plain_text(payload: dict[str, Any]) -> str:
    """Return the notification as plain text."""
    return "\n".join(f"{label}: {value}" for label, value in _lines(payload)) + "\n"


def html_text(payload: dict[str, Any]) -> str:
    """Return the notification as a small HTML table (every value escaped).

    A weekly report is its own page (rendered by backend/report/html.py from
    suppressed counts, every name escaped there).
    """
    page = payload.get("html")
    if isinstance(page, str) and isinstance(payload.get("report"), dict):
        return page
    rows = "".join(
        f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in _lines(payload)
    )
    return (f"<html><body><h3>{html.escape(subject_line(payload))}</h3>"
            f"<table>{rows}</table></body></html>")
