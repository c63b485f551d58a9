"""Exports of dispenses by area and period: CSV and GeoJSON text (pure)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from backend.stats.table import Published

ALL_AREAS = "All areas"
ALL_PERIODS = "All periods"
HIDDEN = "suppressed"


def _shown(value: int | None, small: bool, k: int | None) -> int | str:
    """Return a published entry: its count, "<k" when small, "suppressed" as a complement."""
    if value is not None:
        return value
    return f"<{k}" if small else HIDDEN


def _total(published: Published, r: int | None, c: int | None) -> int | str:
    """Return a published total: of row r, of column c, or (both None) the grand total."""
    k = published.k
    if r is not None:
        return _shown(published.row_totals[r], published.row_small[r], k)
    if c is not None:
        return _shown(published.col_totals[c], published.col_small[c], k)
    return _shown(published.total, published.total_small, k)


def csv_text(published: Published) -> str:
    """Return area,period_start,dispenses rows, then the totals rows."""
    table, k = published.table, published.k
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["area", "period_start", "dispenses"])
    days = [b.date().isoformat() for b in table.buckets]
    for r, area in enumerate(table.groups):
        for c, day in enumerate(days):
            writer.writerow([area, day, _shown(published.cells[r][c], published.small[r][c], k)])
    for c, day in enumerate(days):
        writer.writerow([ALL_AREAS, day, _total(published, None, c)])
    for r, area in enumerate(table.groups):
        writer.writerow([area, ALL_PERIODS, _total(published, r, None)])
    writer.writerow([ALL_AREAS, ALL_PERIODS, _total(published, None, None)])
    return out.getvalue()


def geojson(published: Published, shapes: Mapping[str, dict[str, Any]], period: str
            ) -> dict[str, Any]:
    """Return one Feature per area (its polygon, or null geometry) with counts per period."""
    table, k = published.table, published.k
    days = [b.date().isoformat() for b in table.buckets]
    features = [
        {
            "type": "Feature",
            "geometry": shapes.get(area),
            "properties": {
                "name": area,
                "period": period,
                "dispenses": [
                    {"start": day, "count": _shown(published.cells[r][c],
                                                   published.small[r][c], k)}
                    for c, day in enumerate(days)
                ],
                "total": _total(published, r, None),
            },
        }
        for r, area in enumerate(table.groups)
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        # Foreign members (RFC 7946 section 6.1): the totals over all areas.
        "suppression_k": k,
        "totals": [{"start": day, "count": _total(published, None, c)}
                   for c, day in enumerate(days)],
        "total": _total(published, None, None),
    }
