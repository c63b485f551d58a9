"""Vectorised evaluation of every space-time cylinder for one count matrix.

The engine fixes what the permutation leaves unchanged (circles, time windows,
expected counts, the log-likelihood pieces that depend only on them) once,
so that a Monte Carlo replicate costs a few passes over one array: no Python
loop over circles or windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from backend.hotspots.geometry import Cylinders, FloatArray, IntArray

IntMatrix = npt.NDArray[np.int64]
_TINY = 1e-300
MAX_CYLINDERS = 10_000_000
"""Most (circle, window) pairs one scan holds in memory (about 100 bytes each, 2 threads)."""


def time_windows(n_days: int, max_days: int, prospective: bool) -> tuple[IntArray, IntArray]:
    """Return (start, end) day indices of the windows scanned, inclusive.

    Prospective windows all end on the last day. Windows are ordered by length,
    then start, so that among equal statistics the shortest one wins.
    """
    if n_days < 1:
        raise ValueError("the study period must hold at least one day")
    if not 1 <= max_days <= n_days:
        raise ValueError(f"max_days must be between 1 and the {n_days} days of the study")
    starts: list[int] = []
    ends: list[int] = []
    for length in range(1, max_days + 1):
        first_start = n_days - length if prospective else 0
        for start in range(first_start, n_days - length + 1):
            starts.append(start)
            ends.append(start + length - 1)
    return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)


def xlogx_table(total: int) -> FloatArray:
    """Return T[c] = c ln c + (C - c) ln(C - c) for c = 0..C (0 ln 0 = 0)."""
    c = np.arange(total + 1, dtype=np.float64)
    xlx = np.zeros_like(c)
    xlx[1:] = c[1:] * np.log(c[1:])
    return np.asarray(xlx + xlx[::-1], dtype=np.float64)


def poisson_llr(observed: float, expected: float, total: float) -> float:
    """Return the space-time permutation log-likelihood ratio of one cylinder.

    c ln(c/mu) + (C - c) ln((C - c)/(C - mu)) for a high-rate cylinder (c > mu),
    0 otherwise.
    """
    if observed <= expected or observed <= 0:
        return 0.0
    inside = observed * np.log(observed / expected)
    rest = total - observed
    outside = rest * np.log(rest / (total - expected)) if rest > 0 else 0.0
    return float(inside + outside)


@dataclass
class ScanEngine:
    """Precomputed pieces of the scan, shared by the observed data and all replicates.

    Arrays over cylinders are laid out (window, circle) so that the cumulative
    sums in neighbour order run along contiguous memory.
    """

    cylinders: Cylinders
    starts: IntArray
    ends: IntArray
    total: int
    first_day: int
    """Earliest day any window touches; earlier days never matter."""
    expected: FloatArray
    """mu for every (window, circle): population x window total / total."""
    threshold: FloatArray
    """A cylinder counts only when c > threshold (c > mu and c >= min_cases)."""
    slope: FloatArray
    offset: FloatArray
    table: FloatArray
    count_dtype: type[np.signedinteger[Any]]

    @classmethod
    def build(
        cls,
        cylinders: Cylinders,
        day_totals: IntArray,
        *,
        max_days: int,
        prospective: bool,
        min_cases: int,
    ) -> ScanEngine:
        """Fix circles, windows and expected counts from the marginals."""
        n_days = int(day_totals.shape[0])
        starts, ends = time_windows(n_days, max_days, prospective)
        cells = starts.shape[0] * cylinders.rows
        if cells > MAX_CYLINDERS:
            raise ValueError(
                f"this scan has {cells:,} cylinders ({cylinders.rows:,} circles x "
                f"{starts.shape[0]:,} time windows), more than the {MAX_CYLINDERS:,} it can "
                "hold: lower the radius or the longest window, or scan prospectively"
            )
        total = int(day_totals.sum())
        cum_days = np.concatenate(([0], np.cumsum(day_totals)))
        window_totals = (cum_days[ends + 1] - cum_days[starts]).astype(np.float64)
        denominator = max(total, 1)
        expected = window_totals[:, None] * cylinders.population[None, :] / denominator
        mu = np.maximum(expected, _TINY)
        rest = np.maximum(total - expected, _TINY)
        # LLR = T[c] - c * (ln mu - ln(C - mu)) - C ln(C - mu): one gather and
        # one multiply-add per cylinder in each replicate.
        slope = np.log(mu) - np.log(rest)
        offset = total * np.log(rest)
        threshold = np.maximum(expected, float(min_cases - 1))
        # The running sum over all circles' members is bounded by (cases x
        # locations); 32-bit counts halve the memory traffic when that fits.
        n_loc = int(cylinders.centre_starts.shape[0] - 1)
        small = total * max(n_loc, 1) < 2**31 - 1
        return cls(
            cylinders=cylinders,
            starts=starts,
            ends=ends,
            total=total,
            first_day=int(starts.min()),
            expected=expected,
            threshold=threshold,
            slope=slope,
            offset=offset,
            table=xlogx_table(total),
            count_dtype=np.int32 if small else np.int64,
        )

    def window_counts(self, counts: IntMatrix, day_offset: int = 0) -> IntMatrix:
        """Return cases per (window, location) from a location x day matrix.

        `counts` may start at `day_offset` instead of day 0 (replicates build
        only the days some window touches).
        """
        cum = np.zeros((counts.shape[0], counts.shape[1] + 1), dtype=np.int64)
        np.cumsum(counts, axis=1, out=cum[:, 1:])
        per_window = cum[:, self.ends + 1 - day_offset] - cum[:, self.starts - day_offset]
        return np.ascontiguousarray(per_window.T, dtype=self.count_dtype)

    def cylinder_counts(self, per_window: IntMatrix, out: Workspace | None = None) -> IntMatrix:
        """Return observed cases per (window, circle) by cumulative sums in neighbour order."""
        ws = out if out is not None else Workspace(self)
        cyl = self.cylinders
        np.take(per_window, cyl.members, axis=1, out=ws.gathered)
        np.cumsum(ws.gathered, axis=1, out=ws.running[:, 1:])
        # Each circle subtracts the running sum where its centre's rows begin;
        # repeating one value per centre is far cheaper than a gather per row.
        base = np.repeat(ws.running[:, ws.centre_first], ws.centre_sizes, axis=1)
        # The result is an index into the LLR table: intp indexes fastest.
        np.subtract(ws.running[:, 1:], base, out=ws.observed, casting="unsafe")
        return ws.observed

    def statistics(self, observed: IntMatrix) -> FloatArray:
        """Return the LLR of every cylinder, 0 where it is not a high-rate cluster."""
        llr = self.table[observed]
        llr -= observed * self.slope
        llr -= self.offset
        llr[observed <= self.threshold] = 0.0
        return llr

    def max_statistic(self, counts: IntMatrix, day_offset: int, ws: Workspace) -> float:
        """Return the largest LLR over all cylinders for one count matrix."""
        if self.cylinders.rows == 0:
            return 0.0
        observed = self.cylinder_counts(self.window_counts(counts, day_offset), ws)
        np.take(self.table, observed, out=ws.llr)
        np.multiply(observed, self.slope, out=ws.scratch)
        ws.llr -= ws.scratch
        ws.llr -= self.offset
        np.greater(observed, self.threshold, out=ws.mask)
        # Cylinders that are not high-rate clusters score 0: every LLR kept is
        # positive, so zeroing the rest by a product leaves the maximum intact.
        np.multiply(ws.llr, ws.mask, out=ws.llr)
        return float(ws.llr.max())


class Workspace:
    """Buffers one thread reuses across replicates (fresh arrays each time cost page faults)."""

    def __init__(self, engine: ScanEngine) -> None:
        """Allocate buffers shaped for `engine`'s cylinders and windows."""
        shape = (engine.starts.shape[0], engine.cylinders.rows)
        self.gathered = np.empty(shape, dtype=engine.count_dtype)
        self.running = np.zeros((shape[0], shape[1] + 1), dtype=engine.count_dtype)
        self.centre_first = engine.cylinders.centre_starts[:-1]
        self.centre_sizes = np.diff(engine.cylinders.centre_starts)
        self.observed = np.empty(shape, dtype=np.intp)
        self.llr = np.empty(shape, dtype=np.float64)
        self.scratch = np.empty(shape, dtype=np.float64)
        self.mask = np.empty(shape, dtype=bool)
