"""Rows of the machine detail page's history charts and tables (pure: tested without Streamlit)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from console.api_models import Discrepancy, StockHistory, TemperatureHistory

HISTORY_HOURS = {"24 hours": 24, "7 days": 168, "30 days": 720}
STOCK_DAYS = {"7 days": 7, "14 days": 14, "30 days": 30}


def temperature_rows(history: TemperatureHistory) -> list[dict[str, Any]]:
    """Return one row per reading (or bucket of readings) for the chart."""
    return [{"at": p.at.isoformat(), "celsius": p.celsius, "low": p.low, "high": p.high}
            for p in history.data]


def outside_band(history: TemperatureHistory) -> int:
    """Return how many readings or buckets went outside the safe band at some point."""
    return sum(1 for p in history.data
               if p.low < history.safe_min_c or p.high > history.safe_max_c)


def temperature_summary(history: TemperatureHistory) -> str:
    """Say in one line how the temperature kept to the safe band."""
    if not history.data:
        return "No temperature readings in this period."
    low = min(p.low for p in history.data)
    high = max(p.high for p in history.data)
    band = f"{history.safe_min_c:g}–{history.safe_max_c:g} °C"
    if low >= history.safe_min_c and high <= history.safe_max_c:
        return f"Always inside the safe band ({band}): lowest {low:.1f} °C, highest {high:.1f} °C."
    return (f"Outside the safe band ({band}) at times: lowest {low:.1f} °C, highest "
            f"{high:.1f} °C ({outside_band(history)} of {len(history.data)} points).")


def stock_rows(history: StockHistory) -> list[dict[str, Any]]:
    """Return one row per step of each slot for the step chart."""
    return [{"at": p.at.isoformat(), "slot": p.slot, "count": p.count} for p in history.data]


def discrepancy_rows(items: Iterable[Discrepancy]) -> list[dict[str, Any]]:
    """Return the discrepancies as table rows, newest first as the API sends them."""
    return [{"detected": d.detected_at.strftime("%Y-%m-%d %H:%M"), "slot": d.slot,
             "source": d.source, "books said": d.expected, "found": d.observed,
             "difference": d.observed - d.expected} for d in items]
