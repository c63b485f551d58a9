"""Hotspot areas: what each detector reports to officials (places and counts, no dispenses)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from backend.hotspots.engine import IntMatrix
from backend.hotspots.geometry import FloatArray
from backend.hotspots.odmap import ThresholdHit
from backend.hotspots.stpscan import Cluster
from backend.hotspots.surge import C2Settings, CusumSettings, ears_c2, poisson_cusum

SCAN_DETECTOR = "space-time-permutation"
CITYWIDE_DETECTOR = "ears-c2-citywide"
AREA_C2_DETECTOR = "ears-c2-area"
MACHINE_C2_DETECTOR = "ears-c2-machine"
CITYWIDE_CUSUM_DETECTOR = "poisson-cusum-citywide"
AREA_CUSUM_DETECTOR = "poisson-cusum-area"
CITYWIDE_DETECTORS = frozenset({CITYWIDE_DETECTOR, CITYWIDE_CUSUM_DETECTOR})
THRESHOLD_DETECTOR = "fixed-threshold"
CITYWIDE_SUBJECT = "citywide"
NAMED_AREA_PREFIX = "named-area:"
MACHINE_PREFIX = "machine:"


@dataclass(frozen=True)
class Site:
    """A machine, where it stands, and the named area (neighbourhood) it belongs to."""

    machine_id: str
    lat: float
    lon: float
    area: str | None = None


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
    areas: tuple[str, ...] = ()
    """The named areas (neighbourhoods) its machines stand in."""

    def details(self) -> dict[str, Any]:
        """Return the JSON stored with the alert (no individual dispenses)."""
        return {
            "detector": self.detector,
            "centre_machine": self.centre_machine,
            "lat": self.lat,
            "lon": self.lon,
            "radius_km": round(self.radius_km, 3),
            "machines": self.machines,
            "areas": list(self.areas),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "observed": self.observed,
            "expected": round(self.expected, 4),
            "p_value": self.p_value,
            "recurrence_interval_days": self.recurrence_days,
            "statistic": round(self.statistic, 6),
        }

    def message(self) -> str:
        """Return a one-line summary for people."""
        if self.detector == SCAN_DETECTOR:
            rarity = (
                f", expected by chance once in {self.recurrence_days:.0f} days"
                if self.recurrence_days
                else ""
            )
            return (
                f"Naloxone dispense cluster around {self.centre_machine} "
                f"({self.radius_km:.1f} km, {len(self.machines)} machines), {self.start} "
                f"to {self.end}: {self.observed} observed, {self.expected:.1f} "
                f"expected{rarity}"
            )
        if self.detector in CITYWIDE_DETECTORS:
            place = "across the fleet"
        elif self.detector == THRESHOLD_DETECTOR:
            place = f"within {self.radius_km:.1f} km of {self.centre_machine}"
        elif self.subject.startswith(MACHINE_PREFIX):
            place = f"at machine {self.centre_machine}"
        else:
            place = f"in {self.subject.removeprefix(NAMED_AREA_PREFIX)}"
        return (
            f"Naloxone dispenses surged {place} on {self.end}: {self.observed} against "
            f"about {self.expected:.1f} usually"
        )


def cluster_area(cluster: Cluster, sites: Sequence[Site], start: dt.date) -> Area:
    """Describe a permutation-scan cluster as an area."""
    centre = sites[cluster.centre]
    return Area(
        subject=f"area:{centre.machine_id}",
        detector=SCAN_DETECTOR,
        centre_machine=centre.machine_id,
        lat=centre.lat,
        lon=centre.lon,
        radius_km=cluster.radius_km,
        machines=[sites[i].machine_id for i in cluster.locations],
        start=start + dt.timedelta(days=cluster.start_day),
        end=start + dt.timedelta(days=cluster.end_day),
        observed=cluster.observed,
        expected=cluster.expected,
        p_value=cluster.p_value,
        recurrence_days=cluster.recurrence_days,
        statistic=cluster.llr,
    )


def _footprint(members: Sequence[int], points: FloatArray) -> tuple[int, float]:
    """Return the member nearest the members' centroid and the radius reaching them all."""
    sub = points[list(members)]
    centre = int(np.argmin(np.linalg.norm(sub - sub.mean(axis=0), axis=1)))
    radius = float(np.linalg.norm(sub - sub[centre], axis=1).max())
    return int(members[centre]), radius


SurgeMethod = Literal["c2", "cusum"]


def surge_area(
    subject: str,
    detector: str,
    members: Sequence[int],
    counts: IntMatrix,
    points: FloatArray,
    sites: Sequence[Site],
    today: dt.date,
    method: SurgeMethod,
    c2: C2Settings,
    cusum: CusumSettings,
) -> Area | None:
    """Return an area when EARS C2 or the Poisson CUSUM flags today's total over `members`."""
    if not members:
        return None
    total = counts[list(members)].sum(axis=0, keepdims=True)
    if method == "c2":
        result = ears_c2(total, c2)
        baseline_days, guard_days = c2.baseline_days, c2.guard_days
        statistic, alarm = result.statistic, result.alarm
    else:
        found = poisson_cusum(total, cusum)
        baseline_days, guard_days = cusum.baseline_days, cusum.guard_days
        statistic, alarm = found.statistic, found.alarm
    if not alarm[0, -1]:
        return None
    lag = baseline_days + guard_days
    baseline = total[0, -lag : total.shape[1] - guard_days]
    centre, radius = _footprint(members, points)
    return Area(
        subject=subject,
        detector=detector,
        centre_machine=sites[centre].machine_id,
        lat=sites[centre].lat,
        lon=sites[centre].lon,
        radius_km=radius,
        machines=[sites[i].machine_id for i in members],
        start=today,
        end=today,
        observed=int(total[0, -1]),
        expected=float(baseline.mean()),
        p_value=None,
        recurrence_days=None,
        statistic=float(statistic[0, -1]),
    )


def c2_area(
    subject: str,
    detector: str,
    members: Sequence[int],
    counts: IntMatrix,
    points: FloatArray,
    sites: Sequence[Site],
    today: dt.date,
    c2: C2Settings,
) -> Area | None:
    """Return an area when EARS C2 flags today's total over `members`, else None."""
    return surge_area(subject, detector, members, counts, points, sites, today, "c2", c2,
                      CusumSettings())


def threshold_area(
    hit: ThresholdHit, counts: IntMatrix, sites: Sequence[Site], radius_km: float, today: dt.date
) -> Area:
    """Describe a fixed-threshold hit; expected is the area's mean daily count so far."""
    centre = sites[hit.centre]
    usual = float(counts[hit.machines, :-1].sum(axis=0).mean()) if counts.shape[1] > 1 else 0.0
    return Area(
        subject=f"threshold:{centre.machine_id}",
        detector=THRESHOLD_DETECTOR,
        centre_machine=centre.machine_id,
        lat=centre.lat,
        lon=centre.lon,
        radius_km=radius_km,
        machines=[sites[i].machine_id for i in hit.machines],
        start=today,
        end=today,
        observed=hit.dispenses,
        expected=usual,
        p_value=None,
        recurrence_days=None,
        statistic=float(hit.dispenses),
    )
