"""The demand model: shapes, expected counts, seeded Poisson draws."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.demand import HOURLY_SHAPE, WEEKDAY_SHAPE, DemandModel, choose_slots

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


def test_shapes_average_to_one_and_peak_in_the_evening() -> None:
    assert sum(HOURLY_SHAPE) / 24 == pytest.approx(1.0)
    assert sum(WEEKDAY_SHAPE) / 7 == pytest.approx(1.0)
    assert HOURLY_SHAPE.index(max(HOURLY_SHAPE)) in range(16, 20)
    assert min(HOURLY_SHAPE) == min(HOURLY_SHAPE[2:6])
    assert WEEKDAY_SHAPE[5] > WEEKDAY_SHAPE[1]  # Saturday busier than Tuesday


def test_a_whole_week_expects_seven_times_the_daily_mean() -> None:
    model = DemandModel()
    assert model.expected(10.0, MONDAY, MONDAY + timedelta(days=7)) == pytest.approx(70.0)


def test_expected_splits_spans_at_hour_boundaries() -> None:
    model = DemandModel()
    start = MONDAY + timedelta(hours=3, minutes=30)
    end = start + timedelta(hours=1)
    by_hand = 24 / 24 * (0.5 * model.factor(start) + 0.5 * model.factor(end))
    assert model.expected(24.0, start, end) == pytest.approx(by_hand)
    assert model.expected(24.0, end, start) == 0.0


@given(
    offset_min=st.integers(min_value=0, max_value=7 * 24 * 60),
    length_min=st.integers(min_value=1, max_value=3 * 24 * 60),
    cut_min=st.integers(min_value=0, max_value=3 * 24 * 60),
)
def test_expected_is_additive_over_split_spans(
    offset_min: int, length_min: int, cut_min: int
) -> None:
    model = DemandModel()
    start = MONDAY + timedelta(minutes=offset_min)
    end = start + timedelta(minutes=length_min)
    cut = start + timedelta(minutes=min(cut_min, length_min))
    whole = model.expected(5.0, start, end)
    parts = model.expected(5.0, start, cut) + model.expected(5.0, cut, end)
    assert whole == pytest.approx(parts)


def test_draws_are_reproducible_with_a_seed_and_match_the_mean() -> None:
    model = DemandModel()
    rates = [4.0, 12.0, 0.0]
    first = model.draw(np.random.default_rng(7), rates, MONDAY, MONDAY + timedelta(days=1))
    again = model.draw(np.random.default_rng(7), rates, MONDAY, MONDAY + timedelta(days=1))
    assert first == again
    assert first[2] == 0
    rng = np.random.default_rng(11)
    days = [model.draw(rng, [12.0], MONDAY, MONDAY + timedelta(days=1))[0] for _ in range(2000)]
    monday_mean = model.expected(12.0, MONDAY, MONDAY + timedelta(days=1))
    assert monday_mean < 12.0  # Mondays are quieter than the average day
    assert np.mean(days) == pytest.approx(monday_mean, rel=0.05)
    assert np.var(days) == pytest.approx(monday_mean, rel=0.15)  # Poisson: variance is the mean


def test_night_is_quieter_than_evening_in_draws() -> None:
    model = DemandModel()
    rng = np.random.default_rng(3)
    night = MONDAY + timedelta(hours=3)
    evening = MONDAY + timedelta(hours=17)
    quiet = sum(model.draw(rng, [50.0] * 100, night, night + timedelta(hours=1)))
    busy = sum(model.draw(rng, [50.0] * 100, evening, evening + timedelta(hours=1)))
    assert busy > 3 * quiet


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="24 weights"):
        DemandModel(hourly=(1.0,) * 23)
    with pytest.raises(ValueError, match="negative"):
        DemandModel(weekday=(1.0,) * 6 + (-1.0,))
    with pytest.raises(ValueError, match="negative"):
        DemandModel().draw(np.random.default_rng(1), [-1.0], MONDAY, MONDAY + timedelta(hours=1))
    with pytest.raises(ValueError, match="positive weight"):
        choose_slots(np.random.default_rng(1), [0.0, 0.0], 3)


def test_slot_choice_follows_the_weights() -> None:
    rng = np.random.default_rng(5)
    picks = choose_slots(rng, [3.0, 1.0, 0.0], 4000)
    assert choose_slots(rng, [1.0], 0) == []
    assert 2 not in picks
    assert picks.count(0) / len(picks) == pytest.approx(0.75, abs=0.03)
