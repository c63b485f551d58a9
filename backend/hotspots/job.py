"""The scheduled hotspot job: pure computation from dispense counts, and alert reconciliation.

``compute_areas`` turns machine sites and dispense dates into hotspot areas
(space-time permutation clusters and a fleet-wide EARS C2 surge);
``reconcile`` decides which alerts to open, update or resolve. Neither touches
the database: ``backend.hotspots.store`` is the thin adapter that does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.hotspots.geometry import CoordinateSystem, to_points
from backend.hotspots.settings import HotspotSettings
from backend.hotspots.stpscan import ScanSettings, scan
from backend.hotspots.surge import C2Settings, ears_c2

CITYWIDE_SUBJECT = "citywide"
SCAN_DETECTOR = "space-time-permutation"
CITYWIDE_DETECTOR = "ears-c2-citywide"


@dataclass(frozen=True)
class Site:
    """A machine and where it stands."""

    machine_id: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Area:
    """A place and time where dispenses rose beyond the usual: what officials see."""

    subject: str
    detector: str
    centre_machine: str
    lat: float
    lon: float
    radius_km: float
    machines: list[str]
    start: dt.date
    end: dt.date
    observed: int
    expected: float
    p_value: float | None
    recurrence_days: float | None
    statistic: float

    def details(self) -> dict[str, Any]:
        """Return the JSON stored with the alert (no individual dispenses)."""
        return {
            "detector": self.detector, "centre_machine": self.centre_machine,
            "lat": self.lat, "lon": self.lon, "radius_km": round(self.radius_km, 3),
            "machines": self.machines, "start": self.start.isoformat(),
            "end": self.end.isoformat(), "observed": self.observed,
            "expected": round(self.expected, 4), "p_value": self.p_value,
            "recurrence_interval_days": self.recurrence_days,
            "statistic": round(self.statistic, 6),
        }

    def message(self) -> str:
        """Return a one-line summary for people."""
        if self.detector == CITYWIDE_DETECTOR:
            return (f"Naloxone dispenses surged across the fleet on {self.end}: "
                    f"{self.observed} against about {self.expected:.1f} usually")
        rarity = (f", expected by chance once in {self.recurrence_days:.0f} days"
                  if self.recurrence_days else "")
        return (f"Naloxone dispense cluster around {self.centre_machine} "
                f"({self.radius_km:.1f} km, {len(self.machines)} machines), {self.start} to "
                f"{self.end}: {self.observed} observed, {self.expected:.1f} expected{rarity}")


def count_matrix(
    sites: Sequence[Site], dispense_days: Iterable[tuple[str, dt.date]], start: dt.date,
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
    sites: Sequence[Site], dispense_days: Iterable[tuple[str, dt.date]], today: dt.date,
    settings: HotspotSettings,
) -> list[Area]:
    """Scan the study period ending `today`; return every cluster and a fleet-wide surge."""
    if not sites:
        return []
    start = today - dt.timedelta(days=settings.study_days - 1)
    counts = count_matrix(sites, dispense_days, start, settings.study_days)
    coords = np.array([[s.lat, s.lon] for s in sites], dtype=np.float64)
    points = to_points(coords, CoordinateSystem.LATLON)
    result = scan(counts, points, ScanSettings(
        max_radius_km=settings.max_radius_km, max_share=settings.max_share,
        max_days=settings.max_days, prospective=True, replicates=settings.replicates,
        seed=settings.seed, workers=settings.workers,
    ))
    areas = []
    for c in result.clusters:
        centre = sites[c.centre]
        areas.append(Area(
            subject=f"area:{centre.machine_id}", detector=SCAN_DETECTOR,
            centre_machine=centre.machine_id, lat=centre.lat, lon=centre.lon,
            radius_km=c.radius_km, machines=[sites[i].machine_id for i in c.locations],
            start=start + dt.timedelta(days=c.start_day),
            end=start + dt.timedelta(days=c.end_day), observed=c.observed,
            expected=c.expected, p_value=c.p_value, recurrence_days=c.recurrence_days,
            statistic=c.llr,
        ))
    # The fleet-wide check looks past local clusters already alarming, so one
    # neighbourhood's surge does not also raise a fleet-wide alert.
    local = [i for c in result.clusters if (c.recurrence_days or 0.0)
             >= settings.alert_recurrence_days for i in c.locations]
    rest = np.ones(len(sites), dtype=bool)
    rest[local] = False
    citywide = _citywide_surge(sites, counts * rest[:, None], points, today, settings)
    if citywide is not None:
        areas.append(citywide)
    return areas


def _citywide_surge(
    sites: Sequence[Site], counts: np.ndarray[Any, np.dtype[np.int64]],
    points: np.ndarray[Any, np.dtype[np.float64]], today: dt.date, settings: HotspotSettings,
) -> Area | None:
    """Return a fleet-wide area when EARS C2 flags today's total dispenses."""
    c2_settings = C2Settings(threshold=settings.citywide_c2_threshold)
    total = counts.sum(axis=0, keepdims=True)
    c2 = ears_c2(total, c2_settings)
    if not c2.alarm[0, -1]:
        return None
    lag = c2_settings.baseline_days + c2_settings.guard_days
    baseline = total[0, -lag:-c2_settings.guard_days]
    centroid = points.mean(axis=0)
    centre = int(np.argmin(np.linalg.norm(points - centroid, axis=1)))
    radius = float(np.linalg.norm(points - points[centre], axis=1).max())
    return Area(
        subject=CITYWIDE_SUBJECT, detector=CITYWIDE_DETECTOR,
        centre_machine=sites[centre].machine_id, lat=sites[centre].lat,
        lon=sites[centre].lon, radius_km=radius, machines=[s.machine_id for s in sites],
        start=today, end=today, observed=int(total[0, -1]), expected=float(baseline.mean()),
        p_value=None, recurrence_days=None, statistic=float(c2.statistic[0, -1]),
    )


@dataclass(frozen=True)
class ActiveAlert:
    """A hotspot alert that is open or acknowledged."""

    alert_id: int
    subject: str
    machines: frozenset[str]


@dataclass
class Plan:
    """What to do with hotspot alerts after a run."""

    open: list[Area] = field(default_factory=list)
    update: list[tuple[int, Area]] = field(default_factory=list)
    resolve: list[int] = field(default_factory=list)


def _alarming(area: Area, days: float) -> bool:
    """Say whether an area is at least as rare as 1 in `days` days (C2 areas always are)."""
    if area.detector == CITYWIDE_DETECTOR:
        return True
    return area.recurrence_days is not None and area.recurrence_days >= days


def _same_place(alert: ActiveAlert, area: Area) -> bool:
    """Say whether an area continues an alert: same subject, or shared machines.

    The fleet-wide surge only ever continues the fleet-wide alert.
    """
    if (alert.subject == CITYWIDE_SUBJECT) != (area.subject == CITYWIDE_SUBJECT):
        return False
    return alert.subject == area.subject or bool(alert.machines.intersection(area.machines))


def reconcile(active: Sequence[ActiveAlert], areas: Sequence[Area],
              settings: HotspotSettings) -> Plan:
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
        owner = next((a for a in active if a.alert_id not in matched and _same_place(a, area)),
                     None)
        if owner is not None:
            matched.add(owner.alert_id)
            plan.update.append((owner.alert_id, area))
        elif _alarming(area, settings.alert_recurrence_days):
            plan.open.append(area)
    plan.resolve = [a.alert_id for a in active if a.alert_id not in matched]
    return plan
