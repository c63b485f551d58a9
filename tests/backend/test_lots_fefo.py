"""First-expiry-first-out accounting of a slot's lots, against a model of the physical items."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.lots import fefo
from backend.lots.fefo import LotKey, SlotLots

BASE = date(2027, 1, 1)
KEYS = [LotKey(BASE + timedelta(days=30 * i), f"L{i}", "naloxone-4mg") for i in range(4)]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("load"), st.sampled_from(KEYS), st.integers(0, 6)),
        st.tuples(st.just("vend")),
        st.tuples(st.just("count"), st.integers(0, 20)),
        st.tuples(st.just("remove"), st.sampled_from([*KEYS, None]), st.integers(0, 4)),
    ),
    max_size=60,
)


@given(start=st.integers(0, 8), steps=ops)
def test_fefo_under_any_order_of_visits_and_vends(start: int, steps: list[tuple]) -> None:
    # The model: the items in the slot, None for an item of unknown lot.
    items: list[LotKey | None] = [None] * start
    state = fefo.make(start, [])
    for step in steps:
        if step[0] == "load":
            state = fefo.load(state, step[1], step[2])
            items += [step[1]] * step[2]
        elif step[0] == "vend":
            before = state
            state, taken = fefo.vend(state)
            if items:
                expected = None if None in items else min(i for i in items if i is not None)
                items.remove(expected)
                assert taken == expected
                if taken is not None:
                    # The earliest expiry is consumed first.
                    assert all(taken.expiry <= k.expiry for k, _ in before.lots)
            else:
                assert taken is None
                assert state.count == 0
        elif step[0] == "count":
            state, _ = fefo.set_count(state, step[1])
            while len(items) > step[1]:
                items.remove(None if None in items else min(i for i in items if i is not None))
            items += [None] * (step[1] - len(items))
        else:
            key, qty = step[1], step[2]
            try:
                state = fefo.remove(state, key, qty)
            except fefo.LotError:
                assert items.count(key) < qty
                continue
            for _ in range(qty):
                items.remove(key)
        assert all(q > 0 for _, q in state.lots)
        assert state.untracked >= 0
        assert state.count == len(items)
        for key in KEYS:
            assert state.quantity(key) == items.count(key)
        if None not in items:
            assert state.tracked == state.count


def test_make_trims_stored_lots_beyond_the_count_earliest_first() -> None:
    state = fefo.make(3, [(KEYS[1], 2), (KEYS[0], 2)])
    assert state == SlotLots(3, ((KEYS[0], 1), (KEYS[1], 2)))


def test_bad_quantities_are_refused() -> None:
    state = fefo.make(2, [(KEYS[0], 2)])
    with pytest.raises(fefo.LotError):
        fefo.remove(state, KEYS[0], 3)
    with pytest.raises(fefo.LotError):
        fefo.remove(state, None, 1)
    with pytest.raises(ValueError, match="negative"):
        fefo.set_count(state, -1)
