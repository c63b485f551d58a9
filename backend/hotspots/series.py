"""A hotspot's daily dispenses against its expected level, for the chart beside the alert.

The expected level of the permutation scan (docs/hotspots.md, step 3) on day
d is (the cluster's dispenses over the study period) x (the city's dispenses
on day d) / (all dispenses): summed over the window it is the alert's
``expected``. The surge detectors (C2, CUSUM, fixed threshold) compare with
the area's own usual level, so for them the level is the cluster's mean per
day before the window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlmodel import Session

from backend.auth.principal import Principal, Role
from backend.hotspots.areas import SCAN_DETECTOR
from backend.models import Alert
from backend.stats.dispenses import Bucket, Group, count_dispenses

INTERNAL = Principal("hotspot-series", Role.ADMIN)
"""The city's totals make the scan's expectation: counted over every machine, never shown."""


@dataclass(frozen=True)
class ClusterSeries:
    """Daily dispenses of a cluster's machines over the study period, and their expected level."""

    days: list[dt.date]
    observed: list[int]
    expected: list[float]
    window_start: dt.date
    window_end: dt.date
    detector: str


def scan_expected(cluster: Sequence[int], city: Sequence[int]) -> list[float]:
    """Return the permutation scan's expected count per day: N_A x N_d / N (pure)."""
    total = sum(city)
    if total == 0:
        return [0.0] * len(city)
    share = sum(cluster) / total
    return [share * n for n in city]


def usual_level(cluster: Sequence[int], window_from: int) -> list[float]:
    """Return the mean per day before the window (index ``window_from``) on every day (pure)."""
    before = cluster[:window_from]
    mean = sum(before) / len(before) if before else 0.0
    return [mean] * len(cluster)


def _date(value: object, fallback: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return fallback


def cluster_series(
    session: Session,
    alert: Alert,
    *,
    study_days: int,
    products: Sequence[str],
    zone: ZoneInfo,
) -> ClusterSeries:
    """Count the alert's machines and the city per day over the study period ending its window."""
    details = alert.details or {}
    opened = alert.opened_at.astimezone(zone).date()
    end = _date(details.get("end"), opened)
    start = _date(details.get("start"), end)
    first = end - dt.timedelta(days=study_days - 1)
    machines = {str(m) for m in details.get("machines") or []}
    table = count_dispenses(session, principal=INTERNAL, first=first, last=end,
                            bucket=Bucket.DAY, group=Group.MACHINE, zone=zone,
                            products=list(products) or None)
    width = len(table.buckets)
    city = [sum(row[i] for row in table.counts) for i in range(width)]
    mine = [sum(row[i] for key, row in zip(table.groups, table.counts, strict=True)
                if key in machines) for i in range(width)]
    days = [b.date() for b in table.buckets]
    detector = str(details.get("detector") or SCAN_DETECTOR)
    if detector == SCAN_DETECTOR:
        expected = scan_expected(mine, city)
    else:
        expected = usual_level(mine, max(0, (start - first).days))
    return ClusterSeries(days=days, observed=mine, expected=[round(e, 3) for e in expected],
                         window_start=start, window_end=end, detector=detector)
