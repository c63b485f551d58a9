"""The scheduled hotspot job: pure computation from dispenses, and alert reconciliation.

``compute_areas`` turns machine sites and dispense times into hotspot areas:
space-time permutation clusters, EARS C2 and/or Poisson CUSUM surges per
named area and across the fleet, EARS C2 per machine with enough history,
and (when configured) the fixed N-within-R-km-in-24-h rule.
``reconcile`` decides which alerts to open, update or resolve. Neither
touches the database: ``backend.hotspots.store`` is the thin adapter that does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from backend.hotspots.areas import (
    AREA_C2_DETECTOR,
    AREA_CUSUM_DETECTOR,
    CITYWIDE_CUSUM_DETECTOR,
    CITYWIDE_DETECTOR,
    CITYWIDE_DETECTORS,
    CITYWIDE_SUBJECT,
    MACHINE_C2_DETECTOR,
    MACHINE_PREFIX,
    NAMED_AREA_PREFIX,
    SCAN_DETECTOR,
    Area,
    Site,
    SurgeMethod,
    cluster_area,
    surge_area,
    threshold_area,
)
from backend.hotspots.geometry import CoordinateSystem, to_points
from backend.hotspots.odmap import ThresholdSettings, threshold_hits
from backend.hotspots.settings import HotspotSettings
from backend.hotspots.stpscan import ScanSettings, scan
from backend.hotspots.surge import C2Settings, CusumSettings

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
    areas += _surges(sites, rest, counts, points, today, settings)
    if settings.threshold_dispenses is not None:
        index = {s.machine_id: i for i, s in enumerate(sites)}
        known = [(index[m], t) for m, t in dispenses if m in index]
        rule = ThresholdSettings(
            min_dispenses=settings.threshold_dispenses, radius_km=settings.threshold_radius_km
        )
        hits = threshold_hits(points, [i for i, _ in known], [t for _, t in known], now, rule)
        areas += [threshold_area(h, counts, sites, rule.radius_km, today) for h in hits]
    return [_with_named_areas(a, sites) for a in areas]


def _with_named_areas(area: Area, sites: Sequence[Site]) -> Area:
    """Fill in the named areas an area's machines stand in."""
    where = {s.machine_id: s.area for s in sites}
    named = sorted({n for m in area.machines if (n := where.get(m)) is not None})
    return replace(area, areas=tuple(named))


def _methods(settings: HotspotSettings) -> list[tuple[SurgeMethod, str, str]]:
    """Return (method, area detector, fleet detector) for the surge detectors chosen."""
    chosen: list[tuple[SurgeMethod, str, str]] = []
    if settings.surge in ("c2", "both"):
        chosen.append(("c2", AREA_C2_DETECTOR, CITYWIDE_DETECTOR))
    if settings.surge in ("cusum", "both"):
        chosen.append(("cusum", AREA_CUSUM_DETECTOR, CITYWIDE_CUSUM_DETECTOR))
    return chosen


def _surges(
    sites: Sequence[Site],
    rest: list[int],
    counts: np.ndarray[Any, np.dtype[np.int64]],
    points: np.ndarray[Any, np.dtype[np.float64]],
    today: dt.date,
    settings: HotspotSettings,
) -> list[Area]:
    """Run the count-series detectors per named area, fleet-wide and per machine."""
    c2 = C2Settings(threshold=settings.c2_threshold)
    cusum = CusumSettings(
        # The baseline and guard band must fit in the study period before today.
        baseline_days=min(settings.cusum_baseline_days, settings.study_days - 3),
        shift=settings.cusum_shift,
        decision_limit=settings.cusum_decision_limit,
    )
    one = C2Settings(threshold=settings.machine_c2_threshold,
                     min_count=settings.machine_min_count)
    found: list[Area | None] = []
    labels = sorted({s.area for s in sites if s.area})
    for method, area_detector, city_detector in _methods(settings):
        for label in labels:
            members = [i for i in rest if sites[i].area == label]
            found.append(surge_area(f"{NAMED_AREA_PREFIX}{label}", area_detector, members,
                                    counts, points, sites, today, method, c2, cusum))
        found.append(surge_area(CITYWIDE_SUBJECT, city_detector, rest, counts, points, sites,
                                today, method, c2, cusum))
    if settings.machine_history_days is not None:
        # A machine already inside a flagged area or fleet surge gets no alert of its own.
        covered = {m for a in found if a is not None for m in a.machines}
        # A machine's own series is too sparse to judge until it has history.
        seen = counts.cumsum(axis=1) > 0
        first = np.where(seen.any(axis=1), seen.argmax(axis=1), counts.shape[1])
        oldest = counts.shape[1] - settings.machine_history_days
        for i in rest:
            if first[i] <= oldest and sites[i].machine_id not in covered:
                found.append(surge_area(f"{MACHINE_PREFIX}{sites[i].machine_id}",
                                        MACHINE_C2_DETECTOR, [i], counts, points, sites,
                                        today, "c2", one, cusum))
    return [a for a in found if a is not None]


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
    if area.detector in CITYWIDE_DETECTORS:
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
