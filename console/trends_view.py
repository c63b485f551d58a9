"""Turn dispense statistics into the trends page's rows (pure: tested without Streamlit).

A count the API suppressed is null; it is shown as ``<k`` (a count from 1 to
k-1) or ``suppressed`` (a larger count hidden so the small one cannot be
worked out), never as a number. Last year's weeks are the same weekdays 52
weeks (364 days) earlier, so a Monday lines up with a Monday.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from console.api_models import DispenseStats

YEAR_BEFORE = timedelta(days=364)
"""52 weeks: the same weekdays a year earlier."""

THIS_YEAR = "this year"
LAST_YEAR = "a year earlier"


def shown(count: int | None, small: bool, k: int | None) -> str:
    """Return a count as a person may see it."""
    if count is not None:
        return str(count)
    return f"<{k or 5}" if small else "suppressed"


def period(weeks: int, today: date) -> tuple[date, date]:
    """Return the Monday ``weeks`` weeks ago and the Sunday ending this week."""
    this_monday = today - timedelta(days=today.weekday())
    return this_monday - timedelta(weeks=weeks - 1), this_monday + timedelta(days=6)


def a_year_earlier(first: date, last: date) -> tuple[date, date]:
    """Return the same weekdays 52 weeks earlier."""
    return first - YEAR_BEFORE, last - YEAR_BEFORE


def stats_rows(stats: DispenseStats) -> list[dict[str, Any]]:
    """Return long rows (bucket, key, count or None, shown text) for a chart."""
    rows = []
    for series in stats.series:
        for bucket, count, small in zip(stats.buckets, series.counts, series.small,
                                        strict=True):
            rows.append({"bucket": bucket.date().isoformat(), "key": series.key,
                         "count": count, "shown": shown(count, small, stats.suppression_k)})
    return rows


def stats_table(stats: DispenseStats) -> list[dict[str, Any]]:
    """Return one row per area or product with a column per bucket and the total, as text."""
    table = []
    for series in stats.series:
        row: dict[str, Any] = {stats.group: series.key}
        for bucket, count, small in zip(stats.buckets, series.counts, series.small,
                                        strict=True):
            row[bucket.date().isoformat()] = shown(count, small, stats.suppression_k)
        # The API marks small cells, not small totals: a hidden total just says so.
        row["total"] = shown(series.total, False, stats.suppression_k)
        table.append(row)
    return table


def has_history(stats: DispenseStats) -> bool:
    """Say whether a period holds any dispense at all (shown or suppressed)."""
    return any((c or 0) > 0 or s for series in stats.series
               for c, s in zip(series.counts, series.small, strict=True)) or bool(stats.total)


def comparison_rows(this: DispenseStats, before: DispenseStats) -> list[dict[str, Any]]:
    """Return per-bucket totals of both periods, last year's moved onto this year's dates."""
    rows = []
    for stats, year, shift in ((this, THIS_YEAR, timedelta(0)), (before, LAST_YEAR, YEAR_BEFORE)):
        for bucket, total in zip(stats.buckets, stats.totals, strict=True):
            rows.append({"bucket": (bucket.date() + shift).isoformat(), "year": year,
                         "count": total, "shown": shown(total, False, stats.suppression_k)})
    return rows


def change_rows(this: DispenseStats, before: DispenseStats) -> list[dict[str, Any]]:
    """Return each key's total this period and a year earlier, and the change in per cent."""
    earlier = {s.key: s.total for s in before.series}
    rows = []
    for series in this.series:
        old = earlier.get(series.key)
        now = series.total
        change = "–"
        if now is not None and old:
            change = f"{100.0 * (now - old) / old:+.0f}%"
        rows.append({this.group: series.key,
                     THIS_YEAR: shown(now, False, this.suppression_k),
                     LAST_YEAR: shown(old, False, before.suppression_k)
                     if series.key in earlier else "0",
                     "change": change})
    return rows


def keys_by_total(stats: DispenseStats, limit: int) -> list[str]:
    """Return the ``limit`` keys with the largest shown totals (suppressed ones last)."""
    ordered = sorted(stats.series, key=lambda s: (-(s.total or 0), s.key))
    return [s.key for s in ordered[:limit]]


def only_keys(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Return the rows of the given keys."""
    wanted = set(keys)
    return [r for r in rows if r["key"] in wanted]
