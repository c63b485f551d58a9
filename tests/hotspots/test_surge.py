"""EARS C2, Poisson CUSUM and the fixed ODMAP-style threshold."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from backend.hotspots.odmap import ThresholdSettings, threshold_hits
from backend.hotspots.simulate import make_fleet, plant_city_wide
from backend.hotspots.stpscan import ScanSettings, scan
from backend.hotspots.surge import (
    C2Settings,
    CusumSettings,
    aggregate,
    ears_c2,
    poisson_cusum,
)


def test_c2_statistic_by_hand() -> None:
    series = np.array([[2, 4, 2, 4, 2, 4, 2, 9, 9, 12]])
    result = ears_c2(series, C2Settings(baseline_days=7, guard_days=2, min_sd=0.0))
    baseline = np.array([2, 4, 2, 4, 2, 4, 2], dtype=float)
    expected = (12 - baseline.mean()) / baseline.std(ddof=1)
    assert np.isnan(result.statistic[0, :9]).all()
    assert result.statistic[0, 9] == pytest.approx(expected)
    assert result.alarm[0, 9]


def test_c2_floor_keeps_sparse_machines_quiet() -> None:
    # A machine that dispensed nothing for a week then once: not an outbreak.
    series = np.array([[0] * 9 + [1], [0] * 9 + [6]])
    result = ears_c2(series)
    assert result.statistic[0, 9] == pytest.approx(1.0)
    assert not result.alarm[0, 9]
    assert result.alarm[1, 9]


def test_cusum_signals_a_doubling_and_not_a_steady_rate() -> None:
    rng = np.random.default_rng(3)
    steady = rng.poisson(3.0, size=(200, 60))
    surged = steady.copy()
    surged[:, 50:] = rng.poisson(7.0, size=(200, 10))
    quiet = poisson_cusum(steady, CusumSettings())
    loud = poisson_cusum(surged, CusumSettings())
    assert quiet.alarm[:, 50:].any(axis=1).mean() < 0.2
    assert loud.alarm[:, 50:].any(axis=1).mean() > 0.95


def test_city_wide_surge_is_seen_by_c2_but_not_by_the_permutation_scan() -> None:
    rng = np.random.default_rng(8)
    fleet = make_fleet(rng, machines=60, days=35, extent_km=10, mean_daily=1.0)
    base = rng.poisson(fleet.rates)
    counts = plant_city_wide(base, rng, days=2, relative_risk=3.0, fleet=fleet)
    names, city = aggregate(counts, ["city"] * 60)
    assert names == ["city"]
    c2 = ears_c2(city)
    assert c2.alarm[0, -1]
    result = scan(counts, fleet.points, ScanSettings(replicates=99, seed=1, max_days=7))
    # Every machine rose together: the permutation scan, conditioned on the
    # daily totals, finds nothing unusual.
    assert result.clusters == [] or (result.clusters[0].p_value or 1.0) > 0.05


def test_aggregate_sums_by_label() -> None:
    counts = np.array([[1, 2], [3, 4], [5, 6]])
    names, out = aggregate(counts, ["b", "a", "b"])
    assert names == ["a", "b"]
    assert out.tolist() == [[3, 4], [6, 8]]
    with pytest.raises(ValueError, match="label"):
        aggregate(counts, ["a"])


def test_threshold_rule_counts_the_last_24_hours_within_the_radius() -> None:
    points = np.array([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [10.0, 0.0]])
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    machines = [0, 1, 1, 2, 2, 3, 3, 3, 0]
    times = [now - hour] * 8 + [now - 30 * hour]  # the last one is too old
    hits = threshold_hits(points, machines, times, now,
                          ThresholdSettings(min_dispenses=5, radius_km=1.0))
    assert len(hits) == 1
    assert hits[0].machines == [0, 1, 2]
    assert hits[0].dispenses == 5
    none = threshold_hits(points, machines, times, now,
                          ThresholdSettings(min_dispenses=6, radius_km=1.0))
    assert none == []
    with pytest.raises(ValueError, match="out of range"):
        threshold_hits(points, [7], [now], now)
