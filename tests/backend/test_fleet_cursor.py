"""The fleet snapshot's cursors and store, without a database: deltas are exact whatever the
order transactions commit in (PostgreSQL) or the replica a cursor came from."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.api.fleet_store import Cursor, FleetStore, MachineEntry


def test_cursor_text_round_trips_and_bad_text_is_refused() -> None:
    cursor = Cursor.parse("10:15:11,13")
    assert cursor == Cursor(10, 15, frozenset({11, 13}))
    assert str(cursor) == "10:15:11,13"
    assert str(Cursor.after(41)) == "42:42:"
    for bad in ("", "5:3:", "1:5:7", "1:5:0", "a:b:", "1:2", "1:2:3:", "-1:2:", "1:5:2,,3"):
        assert Cursor.parse(bad) is None, bad


def test_holds_and_covers_follow_snapshot_visibility() -> None:
    cursor = Cursor(10, 15, frozenset({11, 13}))
    assert [x for x in range(8, 17) if cursor.holds(x)] == [8, 9, 10, 12, 14]
    assert cursor.covers(Cursor(9, 12, frozenset({9, 11})))  # older, holds 10 only
    assert not cursor.covers(Cursor(12, 14, frozenset()))  # holds 11, still running here
    assert not cursor.covers(Cursor(16, 16))  # newer
    assert Cursor.after(7).covers(Cursor.after(3))
    assert not Cursor.after(3).covers(Cursor.after(7))


def _entry(machine_id: str, version: int, area: str | None = None) -> MachineEntry:
    return MachineEntry(machine_id, area, f'{{"id":"{machine_id}","v":{version}}}'.encode())


def test_delta_lists_changes_removals_and_refuses_cursors_it_cannot_answer() -> None:
    start = Cursor.after(3)
    store = FleetStore(start, [_entry("a", 0), _entry("b", 0, "north")], at=0.0)
    first_state = store.state(frozenset())
    generation = store.generation
    assert store.apply(Cursor.after(5), [(4, "a"), (5, "b")],
                       {"a": _entry("a", 1), "b": None}, at=1.0)
    assert store.generation != generation
    assert store.delta(start) == {"a": {None}, "b": {"north"}}
    assert store.delta(Cursor.after(4)) == {"b": {"north"}}
    assert store.delta(Cursor.after(5)) == {}
    assert store.delta(Cursor.after(9)) is None  # from a replica that read further
    assert store.ids(frozenset()) == ["a"]
    assert store.state(frozenset()) != first_state
    # A change that leaves the JSON as it was is still kept, but is no new generation.
    generation = store.generation
    assert not store.apply(Cursor.after(6), [(6, "a")], {"a": _entry("a", 1)}, at=2.0)
    assert store.generation == generation
    assert store.delta(Cursor.after(5)) == {"a": {None}}
    store.forget_before(1.5)
    assert store.delta(start) is None  # older than what is kept
    assert store.delta(Cursor.after(5)) == {"a": {None}}


def test_state_names_the_set_whatever_the_order_it_was_built_in() -> None:
    entries = [_entry(f"m{n}", n, "north" if n % 2 else "south") for n in range(20)]
    one = FleetStore(Cursor.after(0), entries, at=0.0)
    two = FleetStore(Cursor.after(0), reversed(entries), at=0.0)
    assert one.state(frozenset()) == two.state(frozenset())
    assert one.state(frozenset({"north"})) != one.state(frozenset({"south"}))
    assert one.state(frozenset({"north"}))[1] == 10


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(5, 80))
def test_deltas_are_exact_when_transactions_commit_out_of_order(seed: int, steps: int) -> None:
    """Simulate PostgreSQL: writers take ids when they start and commit in any order; a
    reader takes snapshots, reads the changes its last snapshot did not hold, and answers
    clients holding any earlier snapshot."""
    rng = random.Random(seed)
    next_xid = 100
    running: dict[int, set[str]] = {}  # xid -> the machines it wrote
    writes: list[tuple[int, str]] = []
    committed: set[int] = set()

    def snapshot() -> Cursor:
        return Cursor(min(running, default=next_xid), next_xid, frozenset(running))

    machines = [f"m{n}" for n in range(6)]
    start = snapshot()
    store = FleetStore(start, [_entry(m, 0) for m in machines], at=0.0)
    taken = [start]
    for step in range(steps):
        action = rng.random()
        if action < 0.3:
            running[next_xid] = set()
            next_xid += 1
        elif action < 0.55 and running:
            xid = rng.choice(sorted(running))
            machine = rng.choice(machines)
            running[xid].add(machine)
            writes.append((xid, machine))
        elif action < 0.8 and running:
            xid = rng.choice(sorted(running))
            del running[xid]
            committed.add(xid)
        else:
            now = snapshot()
            changes = [(x, m) for x, m in writes
                       if x in committed and now.holds(x) and not store.cursor.holds(x)]
            store.apply(now, changes, {m: _entry(m, step) for _, m in changes}, at=float(step))
            taken.append(now)
    for client in taken:
        expected = {m for x, m in writes
                    if x in committed and store.cursor.holds(x) and not client.holds(x)}
        found = store.delta(client)
        assert found is not None
        assert set(found) == expected


@pytest.mark.parametrize("text", ["1:1:", "5:9:6,7"])
def test_a_cursor_covers_itself(text: str) -> None:
    cursor = Cursor.parse(text)
    assert cursor is not None
    assert cursor.covers(cursor)
