"""Small-count suppression: what is hidden, and that no hidden count follows from one total."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.stats.suppression import Suppressed, equations, suppress

tables = st.integers(1, 5).flatmap(
    lambda cols: st.lists(st.lists(st.integers(0, 30), min_size=cols, max_size=cols),
                          min_size=1, max_size=6))


def _recoverable(result: Suppressed) -> set[tuple[int, int]]:
    """Hidden entries an attacker gets by subtracting along one row or column."""
    found = set()
    for parts, total in equations(result.rows, result.cols):
        unknown = [e for e in [*parts, total] if e in result.hidden]
        if len(unknown) == 1:
            found.add(unknown[0])
    return found


@settings(max_examples=300, deadline=None)
@given(tables, st.integers(2, 10))
def test_no_hidden_cell_follows_from_a_row_or_column_total(table: list[list[int]], k: int
                                                           ) -> None:
    result = suppress(table, k)
    small = {(r, c) for r, row in enumerate(result.values) for c, v in enumerate(row)
             if 0 < v < k}
    assert result.primary == small
    assert small <= result.hidden
    assert _recoverable(result) == set()
    # The published values are the true ones wherever they are shown.
    assert result.values[len(table)][len(table[0])] == sum(map(sum, table))


@given(tables)
def test_nothing_hidden_without_small_counts(table: list[list[int]]) -> None:
    big = [[0 if v < 5 else v for v in row] for row in table]
    assert suppress(big, 5).hidden == frozenset()


def test_a_small_total_is_hidden_too() -> None:
    result = suppress([[1, 0], [9, 8]], 5)
    assert {(0, 0), (0, 2)} <= result.primary
    assert _recoverable(result) == set()


def test_worked_example_from_the_docs() -> None:
    # Two areas, three weeks: the 3 is small. Its row then hides the 9 (24 - 12 would
    # give it away), its column the 15, and the 9's column the 11.
    result = suppress([[12, 3, 9], [20, 15, 11]], 5)
    shown = [[result.shown(r, c, "<5", "x") for c in range(4)] for r in range(3)]
    assert shown == [[12, "<5", "x", 24],
                     [20, "x", "x", 46],
                     [32, 18, 20, 70]]


def test_offset_periods_find_both_daylight_saving_changes() -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from backend.stats.dispenses import offset_periods

    lo = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    hi = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert offset_periods(lo, hi, ZoneInfo("America/New_York")) == [
        (lo, -300), (dt.datetime(2026, 3, 8, 7, 0, tzinfo=dt.UTC), -240),
        (dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC), -300)]
    assert offset_periods(lo, hi, ZoneInfo("Asia/Kolkata")) == [(lo, 330)]
