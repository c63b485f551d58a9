"""Space-time permutation scan statistic (Kulldorff et al. 2005), as SaTScan runs it.

Input is a location x day matrix of case counts (dispenses of naloxone) and
the locations' points; output is the most likely cluster and secondary
clusters that share no location with a better one, each with a Monte Carlo
p-value from date permutations and a recurrence interval.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cmp_to_key

import numpy as np

from backend.hotspots.engine import IntMatrix, ScanEngine, Workspace, poisson_llr
from backend.hotspots.geometry import Cylinders, FloatArray, build_cylinders

log = logging.getLogger(__name__)

REPLICATE_BLOCK = 25
"""Replicates drawn from one child seed: fixed so results do not depend on threads."""
TIE_TOLERANCE = 1e-9
"""Statistics closer than this rank as equal when ordering clusters."""
P_VALUE_TOLERANCE = 1e-9
"""Relative slack when a replicate ties the observed statistic (rounding differs)."""


@dataclass(frozen=True)
class ScanSettings:
    """What a scan looks for; defaults are SaTScan's for daily prospective surveillance."""

    max_radius_km: float | None = 3.0
    max_share: float = 0.5
    max_days: int = 7
    prospective: bool = True
    min_cases: int = 2
    replicates: int = 999
    seed: int = 12345
    max_clusters: int = 10
    workers: int = 1
    days_per_time_unit: float = 1.0

    def __post_init__(self) -> None:
        """Refuse settings the scan cannot honour."""
        if self.max_radius_km is not None and self.max_radius_km <= 0:
            raise ValueError("max_radius_km must be positive")
        if not 0 < self.max_share <= 0.5:
            raise ValueError("max_share must be in (0, 0.5]")
        if self.max_days < 1:
            raise ValueError("max_days must be at least 1")
        if self.min_cases < 1:
            raise ValueError("min_cases must be at least 1")
        if self.replicates < 0:
            raise ValueError("replicates cannot be negative")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")


@dataclass(frozen=True)
class Cluster:
    """One reported cylinder: an area over a run of days."""

    centre: int
    locations: list[int]
    """Location indices in the order they join the circle (centre first)."""
    radius_km: float
    start_day: int
    end_day: int
    observed: int
    expected: float
    llr: float
    p_value: float | None
    recurrence_days: float | None

    @property
    def observed_over_expected(self) -> float:
        """Return how many times the expected count was seen."""
        return self.observed / self.expected if self.expected > 0 else float("inf")


@dataclass(frozen=True)
class ScanResult:
    """Clusters, best first, and the replicate maxima they were judged against."""

    clusters: list[Cluster]
    total_cases: int
    n_days: int
    replicate_maxima: FloatArray = field(repr=False)


def scan(counts: IntMatrix, points: FloatArray, settings: ScanSettings) -> ScanResult:
    """Run the space-time permutation scan over a location x day count matrix."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[0] != points.shape[0]:
        raise ValueError("counts must be a (locations x days) matrix matching the points")
    if (counts < 0).any():
        raise ValueError("case counts cannot be negative")
    cylinders = build_cylinders(
        points,
        counts.sum(axis=1),
        max_radius=settings.max_radius_km,
        max_share=settings.max_share,
    )
    engine = ScanEngine.build(
        cylinders,
        counts.sum(axis=0),
        # A study shorter than the longest window is scanned over all its days.
        max_days=min(settings.max_days, counts.shape[1]),
        prospective=settings.prospective,
        min_cases=settings.min_cases,
    )
    total = engine.total
    if total == 0 or cylinders.rows == 0:
        return ScanResult([], total, counts.shape[1], np.zeros(0))
    observed = engine.cylinder_counts(engine.window_counts(counts)).T.copy()
    stats = engine.statistics(observed.T).T
    candidates = _best_per_centre(stats, cylinders)
    chosen = _non_overlapping(candidates, cylinders, settings.max_clusters)
    maxima = replicate_maxima(counts, engine, settings)
    clusters = [_report(row, win, observed, engine, maxima, settings) for row, win, _ in chosen]
    return ScanResult(clusters, total, counts.shape[1], maxima)


def _best_per_centre(stats: FloatArray, cyl: Cylinders) -> list[tuple[int, int, float]]:
    """Return each centre's best (row, window, llr), smallest circle and window on ties."""
    best: list[tuple[int, int, float]] = []
    row_best = stats.max(axis=1)
    n_centres = cyl.centre_starts.shape[0] - 1
    nonempty = cyl.centre_starts[1:] > cyl.centre_starts[:-1]
    tops = np.zeros(n_centres)
    tops[nonempty] = np.maximum.reduceat(row_best, cyl.centre_starts[:-1][nonempty])
    for c in np.flatnonzero(tops > 0):
        lo, hi = int(cyl.centre_starts[c]), int(cyl.centre_starts[c + 1])
        # argmax over the (circle, window) block returns the first maximum:
        # the smallest circle, then the shortest window.
        flat = int(np.argmax(stats[lo:hi]))
        row, win = divmod(flat, stats.shape[1])
        best.append((lo + row, win, float(tops[c])))
    return best


def _non_overlapping(
    candidates: list[tuple[int, int, float]], cyl: Cylinders, limit: int
) -> list[tuple[int, int, float]]:
    """Keep clusters best first, dropping any that shares a location with a kept one."""

    def rank(a: tuple[int, int, float], b: tuple[int, int, float]) -> int:
        # SaTScan's order: higher LLR; on a tie, fewer locations, then lower centre.
        if abs(a[2] - b[2]) >= TIE_TOLERANCE:
            return -1 if a[2] > b[2] else 1
        size_a, size_b = len(cyl.locations(a[0])), len(cyl.locations(b[0]))
        if size_a != size_b:
            return -1 if size_a < size_b else 1
        return int(cyl.centre[a[0]]) - int(cyl.centre[b[0]])

    ordered = sorted(candidates, key=cmp_to_key(rank))
    used: set[int] = set()
    kept: list[tuple[int, int, float]] = []
    for row, win, llr in ordered:
        members = cyl.locations(row)
        if used.intersection(members):
            continue
        kept.append((row, win, llr))
        used.update(members)
        if len(kept) >= limit:
            break
    return kept


def _report(
    row: int,
    win: int,
    observed: IntMatrix,
    engine: ScanEngine,
    maxima: FloatArray,
    settings: ScanSettings,
) -> Cluster:
    """Describe one chosen cylinder, its statistic computed directly for full precision."""
    cyl = engine.cylinders
    c = int(observed[row, win])
    mu = float(engine.expected[win, row])
    llr = poisson_llr(c, mu, engine.total)
    p_value: float | None = None
    recurrence: float | None = None
    if maxima.shape[0] > 0:
        beaten = int(np.count_nonzero(maxima >= llr * (1 - P_VALUE_TOLERANCE)))
        p_value = (beaten + 1) / (maxima.shape[0] + 1)
        recurrence = settings.days_per_time_unit / p_value
    return Cluster(
        centre=int(cyl.centre[row]),
        locations=cyl.locations(row),
        radius_km=float(cyl.radius[row]),
        start_day=int(engine.starts[win]),
        end_day=int(engine.ends[win]),
        observed=c,
        expected=mu,
        llr=llr,
        p_value=p_value,
        recurrence_days=recurrence,
    )


def replicate_maxima(counts: IntMatrix, engine: ScanEngine, settings: ScanSettings) -> FloatArray:
    """Return the maximum LLR of each Monte Carlo replicate (dates permuted among cases).

    Only the days some window touches are rebuilt: which cases land on those
    days is a uniform random subset, in random order, of all cases, which is
    exactly what a full permutation of dates gives there.
    """
    if settings.replicates == 0:
        return np.zeros(0)
    n_loc, n_days = counts.shape
    flat = counts.ravel()
    case_loc = np.repeat(np.repeat(np.arange(n_loc), n_days), flat)
    case_day = np.repeat(np.tile(np.arange(n_days), n_loc), flat)
    first = engine.first_day
    span = n_days - first
    span_days = np.sort(case_day[case_day >= first]) - first
    n_blocks = -(-settings.replicates // REPLICATE_BLOCK)
    seeds = np.random.SeedSequence(settings.seed).spawn(n_blocks)

    def run_block(block: int) -> FloatArray:
        rng = np.random.default_rng(seeds[block])
        ws = Workspace(engine)
        size = min(REPLICATE_BLOCK, settings.replicates - block * REPLICATE_BLOCK)
        out = np.empty(size)
        for i in range(size):
            picked = rng.choice(case_loc.shape[0], size=span_days.shape[0], replace=False)
            cells = np.bincount(case_loc[picked] * span + span_days, minlength=n_loc * span)
            out[i] = engine.max_statistic(cells.reshape(n_loc, span), first, ws)
        return out

    if settings.workers == 1:
        parts = [run_block(b) for b in range(n_blocks)]
    else:
        with ThreadPoolExecutor(max_workers=settings.workers) as pool:
            parts = list(pool.map(run_block, range(n_blocks)))
    return np.concatenate(parts)
