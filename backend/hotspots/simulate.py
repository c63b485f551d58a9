"""Synthetic fleets with known answers, to measure the detectors' power and error rate.

A fleet has machines scattered over a city square, each with its own base
rate of naloxone dispenses and a shared day-of-week shape: space and time
separate, which is the null hypothesis of the space-time permutation scan.
A planted surge multiplies the rate of the machines in one neighbourhood
over the last days of the study.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.hotspots.engine import IntMatrix
from backend.hotspots.geometry import FloatArray, IntArray

WEEKLY_SHAPE = np.array([0.9, 0.95, 1.0, 1.0, 1.1, 1.3, 1.25])
"""Relative dispense rate by day of week (busier at weekends)."""


@dataclass(frozen=True)
class Fleet:
    """Machine positions (Cartesian km) and expected dispenses per machine-day."""

    points: FloatArray
    rates: FloatArray
    """(machines x days) expected counts under the null."""


@dataclass(frozen=True)
class Surge:
    """A planted cluster: machines around a centre, over the last days, rate multiplied."""

    centre: int
    radius_km: float
    days: int
    relative_risk: float


def make_fleet(
    rng: np.random.Generator,
    *,
    machines: int,
    days: int,
    extent_km: float = 20.0,
    mean_daily: float = 0.5,
) -> Fleet:
    """Scatter machines over a square city with lognormal base rates."""
    points = rng.uniform(0.0, extent_km, size=(machines, 2))
    base = mean_daily * rng.lognormal(mean=-0.125, sigma=0.5, size=machines)
    shape = WEEKLY_SHAPE[np.arange(days) % 7]
    return Fleet(points=points, rates=base[:, None] * shape[None, :])


def surge_members(fleet: Fleet, surge: Surge) -> IntArray:
    """Return the machines inside the planted surge's circle."""
    d = np.linalg.norm(fleet.points - fleet.points[surge.centre], axis=1)
    return np.flatnonzero(d <= surge.radius_km).astype(np.int64)


def draw_counts(
    rng: np.random.Generator,
    fleet: Fleet,
    surge: Surge | None = None,
) -> IntMatrix:
    """Draw Poisson dispense counts, with the surge's extra rate if one is planted."""
    rates = fleet.rates
    if surge is not None:
        rates = rates.copy()
        members = surge_members(fleet, surge)
        rates[np.ix_(members, np.arange(rates.shape[1] - surge.days, rates.shape[1]))] *= (
            surge.relative_risk
        )
    return rng.poisson(rates).astype(np.int64)


def plant_city_wide(
    counts: IntMatrix, rng: np.random.Generator, *, days: int, relative_risk: float, fleet: Fleet
) -> IntMatrix:
    """Add a surge that hits every machine at once over the last `days` days."""
    extra = fleet.rates[:, -days:] * (relative_risk - 1.0)
    out = counts.copy()
    out[:, -days:] += rng.poisson(extra)
    return out
