"""When a slot runs out: a Gamma-Poisson demand model with an hour-of-week shape. Pure.

Demand in a slot is Poisson with rate ``lam * shape[hour of week]`` per hour,
``shape`` having mean 1 over the week. The base rate ``lam`` has a Gamma prior
and is updated with the slot's recent dispenses, each weighted by how recent it
is (a half-life), against the equally weighted, shape-adjusted exposure. Given
the Gamma(alpha, beta) posterior, the demand over a future stretch with
exposure X is negative binomial (n = alpha, p = beta / (beta + X)), so the
stock-out time T of a slot holding S satisfies P(T <= t) = P(N(t) >= S), one
negative-binomial tail per point of an hourly grid. docs/restock.md explains it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy import stats

from backend.forecast.params import ModelParams

HOURS_PER_WEEK = 168
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 1970-01-01 was a Thursday: hour 0 of the epoch is hour 72 of its week (Monday 00:00 = 0).
_EPOCH_HOUR_OF_WEEK = 72
INTERVAL = (0.1, 0.9)
"""The quantiles that bound the 80% interval."""


def epoch_hours(when: datetime) -> float:
    """Return hours since the Unix epoch (``when`` must be timezone-aware)."""
    return (when - _EPOCH) / timedelta(hours=1)


def hour_of_week(hours: np.ndarray) -> np.ndarray:
    """Return the hour of the week (Monday 00-01 UTC = 0) of epoch hours."""
    whole: np.ndarray = np.floor(hours).astype(np.int64)
    return (whole + _EPOCH_HOUR_OF_WEEK) % HOURS_PER_WEEK


DEFAULT_PARAMS = ModelParams()


def _bins(start_h: float, end_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the start of each clock hour touching [start_h, end_h) and the part covered."""
    first = math.floor(start_h)
    starts = np.arange(first, math.ceil(end_h), dtype=float)
    covered = np.minimum(starts + 1, end_h) - np.maximum(starts, start_h)
    return starts, np.clip(covered, 0.0, 1.0)


def _shrunk_ratio(counts: np.ndarray, exposure: np.ndarray, pseudo: float) -> np.ndarray:
    """Return each class's rate relative to the overall rate, pulled towards 1."""
    total_exposure = float(exposure.sum())
    overall = float(counts.sum()) / total_exposure if total_exposure > 0 else 0.0
    expected = exposure * overall
    return (counts + pseudo) / (expected + pseudo)


def fit_shape(
    event_hours: Sequence[float] | np.ndarray,
    start_h: float,
    end_h: float,
    params: ModelParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Return 168 hour-of-week demand factors (mean 1) fitted to events in [start_h, end_h).

    Hour of day and weekday are fitted apart (24 + 7 numbers instead of 168, which
    a machine's few weeks of dispenses could not pin down), each shrunk towards a
    flat shape by pseudo-events, and multiplied.
    """
    shape = np.ones(HOURS_PER_WEEK)
    if end_h <= start_h:
        return shape
    events = np.asarray(event_hours, dtype=float)
    events = events[(events >= start_h) & (events < end_h)]
    starts, covered = _bins(start_h, end_h)
    how = hour_of_week(starts)
    exposure_week = np.bincount(how, weights=covered, minlength=HOURS_PER_WEEK)
    counts_week = np.bincount(hour_of_week(events), minlength=HOURS_PER_WEEK).astype(float)
    by_hour = _shrunk_ratio(
        counts_week.reshape(7, 24).sum(axis=0), exposure_week.reshape(7, 24).sum(axis=0),
        params.hour_pseudo)
    by_day = _shrunk_ratio(
        counts_week.reshape(7, 24).sum(axis=1), exposure_week.reshape(7, 24).sum(axis=1),
        params.weekday_pseudo)
    shape = np.outer(by_day, by_hour).reshape(HOURS_PER_WEEK)
    normalised: np.ndarray = shape / shape.mean()
    return normalised


@dataclass(frozen=True)
class Posterior:
    """Gamma(alpha, beta) belief about a slot's base rate per (shape-weighted) hour."""

    alpha: float
    beta: float

    @property
    def rate_per_day(self) -> float:
        """Return the posterior mean demand per average day."""
        return 24.0 * self.alpha / self.beta


def _unavailable_part(starts: np.ndarray, intervals: Sequence[tuple[float, float]]
                      ) -> np.ndarray:
    """Return how much of each clock hour falls inside the (merged) intervals."""
    out = np.zeros(starts.size)
    merged: list[list[float]] = []
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    for a, b in merged:
        out += np.clip(np.minimum(starts + 1, b) - np.maximum(starts, a), 0.0, 1.0)
    return out


def fit_rate(
    event_hours: Sequence[float] | np.ndarray,
    *,
    now_h: float,
    since_h: float,
    shape: np.ndarray,
    params: ModelParams = DEFAULT_PARAMS,
    unavailable: Sequence[tuple[float, float]] = (),
) -> Posterior:
    """Update the prior with the dispenses in [max(since_h, now_h - history), now_h).

    ``since_h`` is when the slot could first have been seen (its machine's
    registration): hours before it are no exposure. Nor are the ``unavailable``
    stretches (start, end) when the slot was empty: demand then went unseen.
    """
    start_h = max(since_h, now_h - params.history_hours)
    alpha = params.prior.rate_per_hour * params.prior.hours
    beta = params.prior.hours
    if now_h <= start_h:
        return Posterior(alpha, beta)
    decay = math.log(2) / params.half_life_hours
    events = np.asarray(event_hours, dtype=float)
    events = events[(events >= start_h) & (events < now_h)]
    starts, covered = _bins(start_h, now_h)
    middles = np.maximum(starts, start_h) + covered / 2
    if unavailable:
        clipped = [(max(a, start_h), min(b, now_h)) for a, b in unavailable]
        covered = np.clip(covered - _unavailable_part(starts, clipped), 0.0, 1.0)
    exposure = float(np.sum(covered * shape[hour_of_week(starts)]
                            * np.exp(-decay * (now_h - middles))))
    weight = float(np.sum(np.exp(-decay * (now_h - events))))
    return Posterior(alpha + weight, beta + exposure)


@dataclass(frozen=True)
class StockoutForecast:
    """When a slot holding ``stock`` runs out, in hours from now (None: beyond the lookahead)."""

    stock: int
    rate_per_day: float
    median_h: float | None
    mean_h: float | None
    low_h: float | None
    high_h: float | None
    probability_by_deadline: float
    deadline_h: float


def _quantile(times: np.ndarray, cdf: np.ndarray, q: float) -> float | None:
    """Return the first time the grid's CDF reaches ``q``, linear between grid points."""
    reached = np.flatnonzero(cdf >= q)
    if reached.size == 0:
        return None
    i = int(reached[0])
    if i == 0:
        return float(times[0])
    c0, c1 = float(cdf[i - 1]), float(cdf[i])
    t0, t1 = float(times[i - 1]), float(times[i])
    return t0 + (t1 - t0) * (q - c0) / (c1 - c0)


def forecast_stockout(
    posterior: Posterior,
    *,
    stock: int,
    now_h: float,
    shape: np.ndarray,
    deadline_h: float,
    params: ModelParams = DEFAULT_PARAMS,
) -> StockoutForecast:
    """Return the stock-out time distribution's median, mean, 80% interval and P(T <= deadline).

    The mean is of the time itself and is given only when the lookahead holds
    at least 99% of the probability (else it would be a truncated mean).
    """
    if stock < 0:
        raise ValueError(f"stock cannot be negative ({stock})")
    if deadline_h < 0:
        raise ValueError(f"the deadline cannot be in the past ({deadline_h} h)")
    rate = posterior.rate_per_day
    if stock == 0:
        return StockoutForecast(0, rate, 0.0, 0.0, 0.0, 0.0, 1.0, deadline_h)
    starts, covered = _bins(now_h, now_h + params.lookahead_hours)
    cumulative = np.concatenate(([0.0], np.cumsum(covered * shape[hour_of_week(starts)])))
    times = np.concatenate(([0.0], np.cumsum(covered)))
    p = posterior.beta / (posterior.beta + cumulative)
    # P(T <= t) = P(N(t) >= stock) = sf(stock - 1).
    cdf = np.maximum.accumulate(stats.nbinom.sf(stock - 1, posterior.alpha, p))
    exposure_at_deadline = float(np.interp(deadline_h, times, cumulative))
    probability = float(stats.nbinom.sf(
        stock - 1, posterior.alpha, posterior.beta / (posterior.beta + exposure_at_deadline)))
    if deadline_h > times[-1]:
        # Past the grid the shape is not read: extend with the average hour.
        extra = deadline_h - float(times[-1])
        probability = float(stats.nbinom.sf(
            stock - 1, posterior.alpha,
            posterior.beta / (posterior.beta + float(cumulative[-1]) + extra)))
    mean = None
    if cdf[-1] >= 0.99:
        survival = 1.0 - cdf
        mean = float(np.sum((survival[1:] + survival[:-1]) / 2 * np.diff(times)))
    return StockoutForecast(
        stock=stock,
        rate_per_day=rate,
        median_h=_quantile(times, cdf, 0.5),
        mean_h=mean,
        low_h=_quantile(times, cdf, INTERVAL[0]),
        high_h=_quantile(times, cdf, INTERVAL[1]),
        probability_by_deadline=probability,
        deadline_h=deadline_h,
    )


def naive_stockout_h(event_hours: Sequence[float] | np.ndarray, *, stock: int, now_h: float,
                     days: float = 7.0) -> float | None:
    """Return the baseline: stock over the last ``days`` days' mean rate (None: no demand)."""
    events = np.asarray(event_hours, dtype=float)
    recent = int(np.count_nonzero((events >= now_h - 24 * days) & (events < now_h)))
    if stock == 0:
        return 0.0
    if recent == 0:
        return None
    return stock / (recent / (24 * days))
