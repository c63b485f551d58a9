"""The scheduled hotspot job: pure computation from dispenses, and alert reconciliation.

``compute_areas`` turns machine sites and dispense times into hotspot areas:
space-time permutation clusters, EARS C2 surges per named area and across
the fleet, and (when configured) the fixed N-within-R-km-in-24-h rule.
``reconcile`` decides which alerts to open, update or resolve. Neither
touches the database: ``backend.hotspots.store`` is the thin adapter that does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from backend.hotspots.areas import (
    AREA_C2_DETECTOR,
    CITYWIDE_DETECTOR,
    CITYWIDE_SUBJECT,
    SCAN_DETECTOR,
    Area,
    Site,
    c2_area,
    cluster_area,
    threshold_area,
)
from backend.hotspots.geometry import CoordinateSystem, to_points
from backend.hotspots.odmap import ThresholdSettings, threshold_hits
from backend.hotspots.settings import HotspotSettings
from backend.hotspots.stpscan import ScanSettings, scan
from backend.hotspots.surge import C2Settings

__all__ = [
    "CITYWIDE_SUBJECT",
    "ActiveAlert",
    "Area",
    "Plan",
    "Site",
    "compute_areas",
    "count_matrix",
    "reconcile",
]

Dispense = tuple[str, dt.datetime]
"""(machine id, aware time) of one naloxone dispense."""


def count_matrix(
    sites: Sequence[Site],
    dispense_days: Sequence[tuple[str, dt.date]],
    start: dt.date,
    days: int,
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Tally (machine id, day) dispenses into a machine x day matrix; others are skipped."""
    index = {s.machine_id: i for i, s in enumerate(sites)}
    counts = np.zeros((len(sites), days), dtype=np.int64)
    for machine_id, day in dispense_days:
        row = index.get(machine_id)
        offset = (day - start).days
        if row is not None and 0 <= offset < days:
            counts[row, offset] += 1
    return counts


def compute_areas(
    sites: Sequence[Site],
    dispenses: Sequence[Dispense],
    now: dt.datetime,
    settings: HotspotSettings,
) -> list[Area]:
    """Run every detector over the study period ending today (in the city's time zone)."""
    if not sites:
        return []
    zone = ZoneInfo(settings.timezone)
    today = now.astimezone(zone).date()
    start = today - dt.timedelta(days=settings.study_days - 1)
    days = [(m, t.astimezone(zone).date()) for m, t in dispenses]
    counts = count_matrix(sites, days, start, settings.study_days)
    points = to_points(
        np.array([[s.lat, s.lon] for s in sites], dtype=np.float64), CoordinateSystem.LATLON
    )
    result = scan(
        counts,
        points,
        ScanSettings(
            max_radius_km=settings.max_radius_km,
            max_share=settings.max_share,
            max_days=settings.max_days,
            prospective=True,
            replicates=settings.replicates,
            seed=settings.seed,
            workers=settings.workers,
        ),
    )
    areas = [cluster_area(c, sites, start) for c in result.clusters]
    # The count-series detectors look past local clusters already alarming, so
    # one neighbourhood's surge does not raise a second, fleet-wide alert.
    local = {
        i
        for c in result.clusters
        if (c.recurrence_days or 0.0) >= settings.alert_recurrence_days
        for i in c.locations
    }
    rest = [i for i in range(len(sites)) if i not in local]
    c2 = C2Settings(threshold=settings.c2_threshold)
    labels = sorted({s.area for s in sites if s.area})
    for label in labels:
        members = [i for i in rest if sites[i].area == label]
        found = c2_area(
            f"site:{label}", AREA_C2_DETECTOR, members, counts, points, sites, today, c2
        )
        if found is not None:
            areas.append(found)
    city = c2_area(CITYWIDE_SUBJECT, CITYWIDE_DETECTOR, rest, counts, points, sites, today, c2)
    if city is not None:
        areas.append(city)
    if settings.threshold_dispenses is not None:
        index = {s.machine_id: i for i, s in enumerate(sites)}
        known = [(index[m], t) for m, t in dispenses if m in index]
        rule = ThresholdSettings(
            min_dispenses=settings.threshold_dispenses, radius_km=settings.threshold_radius_km
        )
        hits = threshold_hits(points, [i for i, _ in known], [t for _, t in known], now, rule)
        areas += [threshold_area(h, counts, sites, rule.radius_km, today) for h in hits]
    return areas


@dataclass(frozen=True)
class ActiveAlert:
    """A hotspot alert that is open or acknowledged."""

    alert_id: int
    subject: str
    machines: frozenset[str]
    detector: str = SCAN_DETECTOR


@dataclass
class Plan:
    """What to do with hotspot alerts after a run."""

    open: list[Area] = field(default_factory=list)
    update: list[tuple[int, Area]] = field(default_factory=list)
    resolve: list[int] = field(default_factory=list)


def _alarming(area: Area, days: float) -> bool:
    """Say whether an area calls for an alert: scan clusters at least 1 in `days` days rare.

    The other detectors report an area only when their rule fired.
    """
    if area.detector != SCAN_DETECTOR:
        return True
    return area.recurrence_days is not None and area.recurrence_days >= days


def _same_place(alert: ActiveAlert, area: Area) -> bool:
    """Say whether an area continues an alert: same detector, and same subject or machines."""
    if alert.detector != area.detector:
        return False
    if area.detector == CITYWIDE_DETECTOR:
        return True
    return alert.subject == area.subject or bool(alert.machines.intersection(area.machines))


def reconcile(
    active: Sequence[ActiveAlert], areas: Sequence[Area], settings: HotspotSettings
) -> Plan:
    """Open alerts for new rare areas, refresh those still there, resolve the rest.

    An open alert survives while an area sharing one of its machines stays at
    least `keep_recurrence_days` rare, so a cluster near the threshold does
    not open and close on alternate runs; a new alert needs
    `alert_recurrence_days`.
    """
    plan = Plan()
    matched: set[int] = set()
    for area in areas:
        keep = _alarming(area, settings.keep_recurrence_days)
        if not keep:
            continue
        owner = next(
            (a for a in active if a.alert_id not in matched and _same_place(a, area)), None
        )
        if owner is not None:
            matched.add(owner.alert_id)
            plan.update.append((owner.alert_id, area))
        elif _alarming(area, settings.alert_recurrence_days):
            plan.open.append(area)
    plan.resolve = [a.alert_id for a in active if a.alert_id not in matched]
    return plan
