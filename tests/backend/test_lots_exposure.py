"""Temperature exposure from a reading series: pure sums over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from backend.lots.exposure import Limits, exposure, worth_keeping

T0 = datetime(2027, 7, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_durations_outside_each_range() -> None:
    readings = [(T0, 20.0), (T0 + HOUR, 30.0), (T0 + 3 * HOUR, 45.0), (T0 + 4 * HOUR, -2.0),
                (T0 + 5 * HOUR, 18.0)]
    got = exposure(readings, T0, T0 + 10 * HOUR, max_hold=6 * HOUR)
    assert got.outside_storage == 4 * HOUR  # 30 for 2 h, 45 for 1 h, -2 for 1 h
    assert got.outside_excursion == 2 * HOUR  # 45 and -2
    assert got.below_freezing == HOUR
    assert (got.min_c, got.max_c) == (-2.0, 45.0)


def test_window_and_hold_bound_a_reading() -> None:
    readings = [(T0, 30.0)]
    # Read before the window: it holds from the window's start, at most max_hold after it was read.
    got = exposure(readings, T0 + HOUR, T0 + 10 * HOUR, max_hold=3 * HOUR)
    assert got.outside_storage == 2 * HOUR
    assert exposure([], T0, T0 + HOUR, max_hold=HOUR).outside_storage == timedelta()


def test_limits_name_the_ranges_passed() -> None:
    limits = Limits(outside_storage=2 * HOUR, outside_excursion=timedelta(),
                    below_freezing=timedelta())
    got = exposure([(T0, 41.0)], T0, T0 + 3 * HOUR, max_hold=6 * HOUR)
    assert limits.exceeded(got) == ["storage_range", "excursion_range"]
    assert limits.exceeded(exposure([(T0, 20.0)], T0, T0 + HOUR, max_hold=HOUR)) == []


@given(st.lists(st.tuples(st.integers(0, 1000), st.floats(-20, 60)), max_size=30))
def test_exposure_never_exceeds_the_window(raw: list[tuple[int, float]]) -> None:
    readings = sorted((T0 + timedelta(minutes=m), c) for m, c in raw)
    got = exposure(readings, T0, T0 + 600 * timedelta(minutes=1), max_hold=2 * HOUR)
    assert timedelta() <= got.below_freezing <= got.outside_excursion <= got.outside_storage
    assert got.outside_storage <= timedelta(minutes=600)


@given(st.lists(st.tuples(st.integers(1, 10), st.floats(-10, 50)), min_size=1, max_size=200))
def test_thinned_heartbeats_give_the_same_exposure(raw: list[tuple[int, float]]) -> None:
    # A heartbeat every 1-10 minutes; keep only those worth keeping, as ingest does.
    at, full = T0, []
    for gap, celsius in raw:
        at += timedelta(minutes=gap)
        full.append((at, celsius))
    kept: list[tuple[datetime, float]] = []
    for reading in full:
        if worth_keeping(kept[-1] if kept else None, reading):
            kept.append(reading)
    end = at + HOUR
    a = exposure(full, T0, end, max_hold=2 * HOUR)
    b = exposure(kept, T0, end, max_hold=2 * HOUR)
    assert (a.outside_storage, a.outside_excursion, a.below_freezing) == (
        b.outside_storage, b.outside_excursion, b.below_freezing)
