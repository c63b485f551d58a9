"""The vectorised scan against a plain loop over every cylinder, on small random data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.hotspots.engine import ScanEngine, Workspace, poisson_llr, time_windows
from backend.hotspots.geometry import build_cylinders
from backend.hotspots.stpscan import ScanSettings, replicate_maxima, scan


def brute_force_best(
    counts: np.ndarray, points: np.ndarray, *, radius: float, share: float, max_days: int,
    prospective: bool, min_cases: int,
) -> float:
    """Return the largest LLR by looping over centres, neighbour counts and windows."""
    n_loc, n_days = counts.shape
    total = int(counts.sum())
    loc_tot = counts.sum(axis=1)
    day_tot = counts.sum(axis=0)
    best = 0.0
    for centre in range(n_loc):
        dist = np.linalg.norm(points - points[centre], axis=1)
        order = sorted(range(n_loc), key=lambda j: (dist[j], *points[j]))
        members: list[int] = []
        for j in order:
            if dist[j] > radius or loc_tot[[*members, j]].sum() > share * total:
                break
            members.append(j)
            for length in range(1, max_days + 1):
                starts = [n_days - length] if prospective else range(n_days - length + 1)
                for s in starts:
                    c = int(counts[members, s:s + length].sum())
                    mu = loc_tot[members].sum() * day_tot[s:s + length].sum() / total
                    if c >= min_cases and c > mu:
                        best = max(best, poisson_llr(c, mu, total))
    return best


@pytest.mark.parametrize("prospective", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vectorised_maximum_equals_the_loop(prospective: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 10, size=(12, 2))
    counts = rng.poisson(rng.uniform(0.1, 1.5, size=(12, 1)) * np.ones((1, 15)))
    cyl = build_cylinders(points, counts.sum(axis=1), max_radius=4.0, max_share=0.5)
    engine = ScanEngine.build(cyl, counts.sum(axis=0), max_days=5, prospective=prospective,
                              min_cases=2)
    fast = engine.max_statistic(counts, 0, Workspace(engine))
    slow = brute_force_best(counts, points, radius=4.0, share=0.5, max_days=5,
                            prospective=prospective, min_cases=2)
    assert fast == pytest.approx(slow, rel=1e-9, abs=1e-12)
    result = scan(counts, points, ScanSettings(max_radius_km=4.0, max_days=5,
                                               prospective=prospective, replicates=0))
    if slow > 0:
        assert result.clusters[0].llr == pytest.approx(slow, rel=1e-12)
    else:
        assert result.clusters == []


def test_windows_prospective_end_on_the_last_day() -> None:
    starts, ends = time_windows(10, 3, prospective=True)
    assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == [(9, 9), (8, 9), (7, 9)]
    starts, ends = time_windows(4, 2, prospective=False)
    assert len(starts) == 4 + 3
    assert ((ends - starts) < 2).all()
    with pytest.raises(ValueError, match="max_days"):
        time_windows(4, 5, prospective=True)


def test_llr_formula() -> None:
    assert poisson_llr(4, 0.67, 194) == pytest.approx(
        4 * math.log(4 / 0.67) + 190 * math.log(190 / (194 - 0.67)))
    assert poisson_llr(1, 2.0, 10) == 0.0


def test_replicates_are_seeded_and_independent_of_threads() -> None:
    rng = np.random.default_rng(5)
    points = rng.uniform(0, 10, size=(30, 2))
    counts = rng.poisson(0.8, size=(30, 40))
    cyl = build_cylinders(points, counts.sum(axis=1), max_radius=3.0, max_share=0.5)
    engine = ScanEngine.build(cyl, counts.sum(axis=0), max_days=7, prospective=True,
                              min_cases=2)
    one = replicate_maxima(counts, engine, ScanSettings(replicates=60, seed=9, workers=1))
    two = replicate_maxima(counts, engine, ScanSettings(replicates=60, seed=9, workers=2))
    other = replicate_maxima(counts, engine, ScanSettings(replicates=60, seed=10, workers=1))
    assert one.shape == (60,)
    assert np.array_equal(one, two)
    assert not np.array_equal(one, other)
    assert (one >= 0).all()


def test_replicates_keep_the_marginals() -> None:
    """A permutation moves dates between cases: location and day totals never change."""
    rng = np.random.default_rng(11)
    points = rng.uniform(0, 5, size=(6, 2))
    counts = rng.poisson(1.0, size=(6, 9))
    # With one circle holding everything and one window holding every day,
    # every replicate sees the same count as the data.
    cyl = build_cylinders(points, counts.sum(axis=1), max_radius=None, max_share=0.5)
    engine = ScanEngine.build(cyl, counts.sum(axis=0), max_days=9, prospective=True,
                              min_cases=1)
    ws = Workspace(engine)
    observed = engine.cylinder_counts(engine.window_counts(counts), ws).copy()
    full = observed[-1]  # the 9-day window: every circle's spatial total
    assert np.array_equal(full, cyl.population.astype(np.int64))


def test_scan_refuses_bad_input() -> None:
    points = np.zeros((2, 2))
    with pytest.raises(ValueError, match="negative"):
        scan(np.array([[1, -1], [0, 0]]), points, ScanSettings(replicates=0, max_days=1))
    with pytest.raises(ValueError, match="matrix"):
        scan(np.zeros((3, 2), dtype=np.int64), points, ScanSettings(replicates=0))
    with pytest.raises(ValueError, match="max_share"):
        ScanSettings(max_share=0.9)


def test_no_cases_gives_no_clusters() -> None:
    points = np.array([[0.0, 0.0], [1.0, 0.0]])
    result = scan(np.zeros((2, 5), dtype=np.int64), points, ScanSettings(replicates=9))
    assert result.clusters == []
    assert result.total_cases == 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_loc=st.integers(2, 9),
    n_days=st.integers(3, 12),
    max_days=st.integers(1, 6),
    radius=st.floats(0.5, 12.0),
    prospective=st.booleans(),
)
def test_vectorised_maximum_equals_the_loop_for_any_data(
    seed: int, n_loc: int, n_days: int, max_days: int, radius: float, prospective: bool,
) -> None:
    rng = np.random.default_rng(seed)
    # Integer coordinates make exact distance ties common: the tie rule is exercised.
    points = rng.integers(0, 6, size=(n_loc, 2)).astype(float)
    points += np.arange(n_loc)[:, None] * 1e-3  # no two locations on the same spot
    counts = rng.poisson(rng.uniform(0.2, 2.0), size=(n_loc, n_days))
    max_days = min(max_days, n_days)
    cyl = build_cylinders(points, counts.sum(axis=1), max_radius=radius, max_share=0.5)
    engine = ScanEngine.build(cyl, counts.sum(axis=0), max_days=max_days,
                              prospective=prospective, min_cases=2)
    fast = engine.max_statistic(counts, 0, Workspace(engine)) if counts.sum() else 0.0
    slow = brute_force_best(counts, points, radius=radius, share=0.5, max_days=max_days,
                            prospective=prospective, min_cases=2) if counts.sum() else 0.0
    assert fast == pytest.approx(slow, rel=1e-9, abs=1e-9)


def test_a_scan_too_big_for_memory_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    import backend.hotspots.engine as engine_module

    monkeypatch.setattr(engine_module, "MAX_CYLINDERS", 100)
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 3, size=(20, 2))
    counts = rng.poisson(1.0, size=(20, 30))
    with pytest.raises(ValueError, match="lower the radius or the longest window"):
        scan(counts, points, ScanSettings(max_radius_km=None, prospective=False, replicates=0))
