"""The stock-out model: exact where it can be, Monte Carlo where it cannot, and monotone."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from backend.forecast.model import (
    HOURS_PER_WEEK,
    Posterior,
    StockoutForecast,
    epoch_hours,
    fit_rate,
    fit_shape,
    forecast_stockout,
    hour_of_week,
    naive_stockout_h,
)
from backend.forecast.params import ModelParams, Prior

NOW_H = epoch_hours(datetime(2026, 3, 4, 15, 20, tzinfo=UTC))  # a Wednesday
FLAT = np.ones(HOURS_PER_WEEK)
PARAMS = ModelParams(lookahead_hours=14 * 24)


def test_hour_of_week_starts_on_monday_midnight_utc() -> None:
    monday = epoch_hours(datetime(2026, 3, 2, 0, 30, tzinfo=UTC))
    sunday = epoch_hours(datetime(2026, 3, 8, 23, 59, tzinfo=UTC))
    assert hour_of_week(np.array([monday, sunday])).tolist() == [0, 167]


def test_shape_has_mean_one_and_finds_the_busy_hours() -> None:
    rng = np.random.default_rng(1)
    start = NOW_H - 28 * 24
    hours = np.arange(start, NOW_H)
    busy = (np.floor(hours) % 24 >= 18)  # 18:00-24:00 UTC three times as busy
    counts = rng.poisson(np.where(busy, 1.5, 0.5))
    events = np.repeat(hours, counts) + 0.5
    shape = fit_shape(events, start, NOW_H)
    assert shape.mean() == pytest.approx(1.0)
    by_hour = shape.reshape(7, 24).mean(axis=0)
    assert by_hour[18:].mean() / by_hour[:18].mean() == pytest.approx(3.0, rel=0.2)


def test_no_history_is_the_prior() -> None:
    prior = Prior(rate_per_hour=0.1, hours=24)
    post = fit_rate([], now_h=NOW_H, since_h=NOW_H, shape=FLAT, params=ModelParams(prior=prior))
    assert (post.alpha, post.beta) == pytest.approx((2.4, 24.0))


def test_flat_shape_tail_is_the_negative_binomial() -> None:
    post = Posterior(alpha=6.0, beta=60.0)
    f = forecast_stockout(post, stock=4, now_h=float(int(NOW_H)), shape=FLAT, deadline_h=24,
                          params=PARAMS)
    # Exposure 24 h, p = beta / (beta + 24).
    assert f.probability_by_deadline == pytest.approx(stats.nbinom.sf(3, 6.0, 60 / 84))
    assert f.low_h is not None
    assert f.median_h is not None
    assert f.high_h is not None
    assert f.low_h < f.median_h < f.high_h


def test_quantiles_match_a_monte_carlo_of_the_model() -> None:
    """Draw rates from the posterior and arrivals from the shaped Poisson; compare quantiles."""
    rng = np.random.default_rng(3)
    shape = fit_shape(rng.uniform(NOW_H - 600, NOW_H, 300) + np.sin(np.arange(300)),
                      NOW_H - 600, NOW_H)
    post = Posterior(alpha=12.0, beta=150.0)
    stock = 5
    f = forecast_stockout(post, stock=stock, now_h=NOW_H, shape=shape, deadline_h=24,
                          params=PARAMS)
    # Exact simulation by time change: arrivals of a unit Poisson process mapped back
    # through the cumulative exposure.
    grid = np.arange(0, PARAMS.lookahead_hours + 1, 0.25)
    starts = NOW_H + grid[:-1]
    cumulative = np.concatenate(([0], np.cumsum(0.25 * shape[hour_of_week(starts)])))
    lam = rng.gamma(post.alpha, 1 / post.beta, size=20_000)
    unit = rng.gamma(stock, 1.0, size=20_000)  # time of the stock-th unit-rate arrival
    times = np.interp(unit / lam, cumulative, grid, right=np.inf)
    for q, got in ((0.1, f.low_h), (0.5, f.median_h), (0.9, f.high_h)):
        assert got == pytest.approx(float(np.quantile(times, q)), rel=0.05, abs=0.5)
    assert f.probability_by_deadline == pytest.approx(float(np.mean(times <= 24)), abs=0.015)


def test_an_empty_slot_is_out_now() -> None:
    f = forecast_stockout(Posterior(1, 10), stock=0, now_h=NOW_H, shape=FLAT, deadline_h=24)
    assert (f.median_h, f.probability_by_deadline) == (0.0, 1.0)


def test_baseline_is_stock_over_last_week_rate() -> None:
    events = NOW_H - np.arange(1, 15) * 12.0  # 14 in a week, all within 7 days
    assert naive_stockout_h(events, stock=6, now_h=NOW_H) == pytest.approx(6 / (14 / 168))
    assert naive_stockout_h([], stock=6, now_h=NOW_H) is None


def _key(f: StockoutForecast) -> list[float]:
    inf = float("inf")
    return [inf if v is None else v for v in (f.low_h, f.median_h, f.high_h, f.mean_h)]


def _not_later(sooner: StockoutForecast, later: StockoutForecast) -> None:
    for a, b in zip(_key(sooner), _key(later), strict=True):
        assert a <= b + 1e-6
    assert sooner.probability_by_deadline >= later.probability_by_deadline - 1e-9


_hours = st.lists(st.floats(min_value=0, max_value=28 * 24 - 1e-3), max_size=60)
_stock = st.integers(min_value=0, max_value=15)
_shape = st.lists(st.floats(min_value=0.1, max_value=3), min_size=HOURS_PER_WEEK,
                  max_size=HOURS_PER_WEEK).map(lambda w: np.array(w) / np.mean(w))


def _forecast(ages: list[float], stock: int, shape: np.ndarray, prior_rate: float = 0.1
              ) -> StockoutForecast:
    params = ModelParams(lookahead_hours=10 * 24, prior=Prior(rate_per_hour=prior_rate))
    post = fit_rate(NOW_H - np.array(ages, dtype=float), now_h=NOW_H, since_h=NOW_H - 40 * 24,
                    shape=shape, params=params)
    return forecast_stockout(post, stock=stock, now_h=NOW_H, shape=shape, deadline_h=24,
                             params=params)


@settings(deadline=None)
@given(ages=_hours, extra=st.lists(st.floats(min_value=0, max_value=28 * 24 - 1e-3),
                                   min_size=1, max_size=20), stock=_stock, shape=_shape)
def test_more_dispenses_never_predict_a_later_stockout(
    ages: list[float], extra: list[float], stock: int, shape: np.ndarray
) -> None:
    _not_later(_forecast(ages + extra, stock, shape), _forecast(ages, stock, shape))


@settings(deadline=None)
@given(ages=_hours, stock=_stock, shape=_shape,
       rates=st.tuples(st.floats(0.01, 2), st.floats(0.01, 2)).map(sorted))
def test_a_higher_rate_never_predicts_a_later_stockout(
    ages: list[float], stock: int, shape: np.ndarray, rates: list[float]
) -> None:
    low, high = rates
    _not_later(_forecast(ages, stock, shape, high), _forecast(ages, stock, shape, low))


@settings(deadline=None)
@given(ages=_hours, stocks=st.tuples(_stock, _stock).map(sorted), shape=_shape)
def test_lower_stock_never_predicts_a_later_stockout(
    ages: list[float], stocks: list[int], shape: np.ndarray
) -> None:
    low, high = stocks
    _not_later(_forecast(ages, low, shape), _forecast(ages, high, shape))


def test_empty_stretches_are_no_exposure() -> None:
    params = ModelParams(half_life_hours=1e9, prior=Prior(rate_per_hour=0.1, hours=10))
    start = float(int(NOW_H)) - 100
    events = start + np.arange(0, 50, 5.0) + 0.5  # ten in the first 50 hours
    full = fit_rate(events, now_h=start + 100, since_h=start, shape=FLAT, params=params)
    cut = fit_rate(events, now_h=start + 100, since_h=start, shape=FLAT, params=params,
                   unavailable=[(start + 50.5, start + 200), (start + 60, start + 70),
                                (start - 50, start + 0.5)])
    assert (full.alpha, full.beta) == pytest.approx((11, 110), rel=1e-6)
    assert (cut.alpha, cut.beta) == pytest.approx((11, 10 + 50), rel=1e-6)
