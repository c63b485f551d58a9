"""Surge detectors for rises the permutation scan cannot see (everywhere at once).

The space-time permutation scan conditions on each day's total, so a surge
that lifts every machine equally leaves it blind. These detectors watch
count series on their own: one per machine, one per area, one city-wide.

- EARS C2 (CDC's Early Aberration Reporting System): today's count against
  the mean and standard deviation of a trailing baseline, separated from
  today by a guard band so a rising surge does not hide in its own baseline.
- Poisson CUSUM: accumulates evidence that the rate has moved from the
  baseline rate to a chosen multiple of it, and signals past a decision limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backend.hotspots.engine import IntMatrix
from backend.hotspots.geometry import FloatArray

BoolMatrix = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class C2Settings:
    """EARS C2 parameters (CDC defaults: 7-day baseline, 2-day guard band, 3 SD)."""

    baseline_days: int = 7
    guard_days: int = 2
    threshold: float = 3.0
    min_sd: float = 1.0
    """Floor on the baseline SD: sparse counts (all zeros) would make any dispense an alarm."""
    min_count: int = 3
    """Fewest dispenses on a day that can raise an alarm."""


@dataclass(frozen=True)
class C2Result:
    """Per series and day: the C2 statistic and whether it alarmed (NaN before a baseline)."""

    statistic: FloatArray
    alarm: BoolMatrix


def ears_c2(series: IntMatrix, settings: C2Settings | None = None) -> C2Result:
    """Run EARS C2 over each row of a (series x days) count matrix."""
    cfg = settings or C2Settings()
    x = np.atleast_2d(np.asarray(series, dtype=np.float64))
    n_series, n_days = x.shape
    lag = cfg.baseline_days + cfg.guard_days
    stat = np.full((n_series, n_days), np.nan)
    if n_days > lag:
        # Baseline for day t: days t-lag .. t-guard-1, as sliding windows.
        windows = np.lib.stride_tricks.sliding_window_view(x, cfg.baseline_days, axis=1)
        base = windows[:, : n_days - lag]
        mean = base.mean(axis=2)
        sd = np.maximum(base.std(axis=2, ddof=1) if cfg.baseline_days > 1 else 0.0, cfg.min_sd)
        stat[:, lag:] = (x[:, lag:] - mean) / sd
    alarm = np.nan_to_num(stat, nan=-np.inf) > cfg.threshold
    alarm &= x >= cfg.min_count
    return C2Result(statistic=stat, alarm=alarm)


@dataclass(frozen=True)
class CusumSettings:
    """Poisson CUSUM parameters."""

    baseline_days: int = 28
    guard_days: int = 2
    shift: float = 2.0
    """Rate multiple the CUSUM is tuned to detect (out-of-control / in-control)."""
    decision_limit: float = 4.0
    min_rate: float = 0.2
    """Floor on the baseline rate per day, so quiet machines keep a finite reference."""


@dataclass(frozen=True)
class CusumResult:
    """Per series and day: the CUSUM value and whether it crossed the decision limit."""

    statistic: FloatArray
    alarm: BoolMatrix


def poisson_cusum(series: IntMatrix, settings: CusumSettings | None = None) -> CusumResult:
    """Run a one-sided Poisson CUSUM over each row, with a trailing baseline rate."""
    cfg = settings or CusumSettings()
    x = np.atleast_2d(np.asarray(series, dtype=np.float64))
    n_series, n_days = x.shape
    lag = cfg.baseline_days + cfg.guard_days
    stat = np.full((n_series, n_days), np.nan)
    alarm = np.zeros((n_series, n_days), dtype=bool)
    if n_days <= lag:
        return CusumResult(stat, alarm)
    cum = np.concatenate((np.zeros((n_series, 1)), np.cumsum(x, axis=1)), axis=1)
    level = np.zeros(n_series)
    log_shift = np.log(cfg.shift)
    # A loop over days, vectorised over series: each day depends on the last.
    for t in range(lag, n_days):
        lo, hi = t - lag, t - cfg.guard_days
        rate = np.maximum((cum[:, hi] - cum[:, lo]) / cfg.baseline_days, cfg.min_rate)
        level = np.maximum(0.0, level + x[:, t] * log_shift - (cfg.shift - 1.0) * rate)
        stat[:, t] = level
        crossed = level > cfg.decision_limit
        alarm[:, t] = crossed
        # Restart after a signal so one surge gives one alarm run, not a ramp.
        level = np.where(crossed, 0.0, level)
    return CusumResult(stat, alarm)


def aggregate(counts: IntMatrix, groups: npt.ArrayLike) -> tuple[list[str], IntMatrix]:
    """Sum machine rows into one series per group label (an area), labels sorted."""
    labels = np.asarray(groups).astype(str)
    if labels.shape[0] != counts.shape[0]:
        raise ValueError("one group label per machine is needed")
    names, inverse = np.unique(labels, return_inverse=True)
    out = np.zeros((names.shape[0], counts.shape[1]), dtype=np.int64)
    np.add.at(out, inverse, counts)
    return [str(n) for n in names], out
