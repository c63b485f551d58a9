"""ODMAP-style fixed threshold: N dispenses within R km in 24 hours.

Some jurisdictions want a rule anyone can explain: "five naloxone dispenses
within a mile in a day". It carries no p-value; it is a tripwire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from backend.hotspots.geometry import FloatArray

WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class ThresholdSettings:
    """The rule: at least `min_dispenses` within `radius_km` over `window`."""

    min_dispenses: int = 5
    radius_km: float = 1.6
    window: dt.timedelta = WINDOW


@dataclass(frozen=True)
class ThresholdHit:
    """An area where the rule fired: a centre machine and the machines around it."""

    centre: int
    machines: list[int]
    dispenses: int


def threshold_hits(
    points: FloatArray,
    machine_of_event: Sequence[int],
    times: Sequence[dt.datetime],
    now: dt.datetime,
    settings: ThresholdSettings | None = None,
) -> list[ThresholdHit]:
    """Return non-overlapping areas with at least N dispenses in (now - window, now]."""
    cfg = settings or ThresholdSettings()
    n = points.shape[0]
    machine = np.asarray(machine_of_event, dtype=np.int64)
    if machine.shape[0] != len(times):
        raise ValueError("one machine per event time is needed")
    if machine.size and (machine.min() < 0 or machine.max() >= n):
        raise ValueError("event machine index out of range")
    recent = np.array([now - cfg.window < t <= now for t in times], dtype=bool)
    per_machine = np.bincount(machine[recent], minlength=n) if n else np.zeros(0, np.int64)
    tree = cKDTree(points)
    areas = tree.query_ball_point(points, r=cfg.radius_km * (1 + 1e-12))
    totals = np.array([int(per_machine[a].sum()) for a in areas], dtype=np.int64)
    hits: list[ThresholdHit] = []
    used = np.zeros(n, dtype=bool)
    # Largest first, and never two areas sharing a machine: one alert per place.
    for centre in np.argsort(-totals, kind="stable"):
        if totals[centre] < cfg.min_dispenses:
            break
        members = sorted(int(m) for m in areas[centre])
        if used[members].any():
            continue
        used[members] = True
        hits.append(ThresholdHit(int(centre), members, int(totals[centre])))
    return hits
