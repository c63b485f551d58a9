"""Counter deltas: properties over random audit sequences, resets, events."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_agent.dex.audit import Audit, DexEvent, Identity, Selection
from firmware_agent.dex.deltas import Baseline, EventState, diff

SELECTIONS = ("1", "2", "3")


def make_audit(
    counters: dict[str, tuple[int, int, int]],
    serial: str = "S1",
    events: tuple[DexEvent, ...] = (),
) -> Audit:
    """Build an audit from selection -> (paid, free, test) lifetime counters."""
    selections = tuple(
        Selection(id=sid, vends=paid, free_vends=free, test_vends=test)
        for sid, (paid, free, test) in counters.items()
    )
    return Audit(identity=Identity(serial=serial), selections=selections, events=events)


# Each step adds (paid, free, test) increments per selection.
steps = st.lists(
    st.fixed_dictionaries(
        {sid: st.tuples(*(st.integers(0, 40),) * 3) for sid in SELECTIONS}
    ),
    min_size=1,
    max_size=12,
)


Counters = dict[str, tuple[int, int, int]]


def counters_up_to(limit: int) -> st.SearchStrategy[Counters]:
    """Return a strategy of (paid, free, test) per selection, each at most ``limit``."""
    return st.fixed_dictionaries(
        {sid: st.tuples(*(st.integers(0, limit),) * 3) for sid in SELECTIONS}
    )


def _cumulative(start: Counters, increments: list[Counters]) -> list[Audit]:
    audits = [make_audit(start)]
    current = dict(start)
    for inc in increments:
        current = {
            sid: tuple(a + b for a, b in zip(current[sid], inc[sid], strict=True))  # type: ignore[misc]
            for sid in SELECTIONS
        }
        audits.append(make_audit(current))
    return audits


@given(
    start=counters_up_to(10_000),
    increments=steps,
)
def test_emitted_vends_equal_paid_plus_free_increase(
    start: dict[str, tuple[int, int, int]], increments: list[dict[str, tuple[int, int, int]]]
) -> None:
    audits = _cumulative(start, increments)
    baseline = None
    emitted = dict.fromkeys(SELECTIONS, 0)
    for audit in audits:
        delta = diff(baseline, audit)
        assert all(count > 0 for count in delta.vends.values())
        assert delta.resets == ()
        for sid, count in delta.vends.items():
            emitted[sid] += count
        baseline = delta.baseline
    for sid in SELECTIONS:
        paid = sum(inc[sid][0] for inc in increments)
        free = sum(inc[sid][1] for inc in increments)
        assert emitted[sid] == paid + free  # test vends never count


@given(
    values=st.lists(
        counters_up_to(5_000),
        min_size=1,
        max_size=15,
    )
)
def test_never_negative_or_implausible_with_arbitrary_counters(
    values: list[dict[str, tuple[int, int, int]]],
) -> None:
    baseline = None
    for counters in values:
        delta = diff(baseline, make_audit(counters), max_delta=1_000)
        assert all(0 < count <= 1_000 for count in delta.vends.values())
        baseline = delta.baseline
        # The baseline always follows the audit, so the next diff starts from here.
        assert dict(baseline.counters) == {s: p + f for s, (p, f, _t) in counters.items()}


def test_first_audit_only_sets_the_baseline() -> None:
    delta = diff(None, make_audit({"1": (5, 7, 1)}))
    assert delta.vends == {}
    assert delta.first_audit
    assert dict(delta.baseline.counters) == {"1": 12}


def test_counter_going_down_is_a_reset_and_rebaselines(caplog: pytest.LogCaptureFixture) -> None:
    before = diff(None, make_audit({"1": (50, 50, 0), "2": (3, 0, 0)})).baseline
    with caplog.at_level(logging.WARNING):
        delta = diff(before, make_audit({"1": (0, 2, 0), "2": (4, 0, 0)}))
    assert delta.vends == {"2": 1}
    assert delta.resets == ("1",)
    assert "treated as a reset" in caplog.text
    after = diff(delta.baseline, make_audit({"1": (0, 5, 0), "2": (4, 0, 0)}))
    assert after.vends == {"1": 3}


def test_huge_jump_is_not_emitted() -> None:
    before = diff(None, make_audit({"1": (10, 0, 0)})).baseline
    delta = diff(before, make_audit({"1": (10, 60_000, 0)}))
    assert delta.vends == {}
    assert delta.resets == ("1",)


def test_machine_swap_rebaselines() -> None:
    before = diff(None, make_audit({"1": (10, 0, 0)}, serial="A")).baseline
    delta = diff(before, make_audit({"1": (99, 0, 0)}, serial="B"))
    assert delta.vends == {}
    assert delta.baseline.machine_serial == "B"


def test_new_selection_is_baselined_and_missing_one_kept() -> None:
    before = diff(None, make_audit({"1": (1, 0, 0), "2": (5, 0, 0)})).baseline
    delta = diff(before, make_audit({"1": (2, 0, 0), "3": (40, 0, 0)}))
    assert delta.vends == {"1": 1}
    assert dict(delta.baseline.counters) == {"1": 2, "2": 5, "3": 40}


def test_events_new_occurrence_and_end() -> None:
    t0, t1 = datetime(2024, 1, 1, 10, 0), datetime(2024, 1, 1, 11, 0)
    door_open = DexEvent("EGS", occurred_at=t0, count=1, active=True)
    jam = DexEvent("EJJ", occurred_at=t0, count=3, active=False)
    base = diff(None, make_audit({}, events=(door_open, jam))).baseline
    # Nothing changed: nothing reported.
    assert diff(base, make_audit({}, events=(door_open, jam))).events == ()
    door_closed = DexEvent("EGS", occurred_at=t0, count=1, active=False)
    jam_again = DexEvent("EJJ", occurred_at=t1, count=4, active=False)
    changes = diff(base, make_audit({}, events=(door_closed, jam_again))).events
    by_code = {c.event.code: c for c in changes}
    assert (by_code["EGS"].new_occurrence, by_code["EGS"].ended) == (False, True)
    assert by_code["EJJ"].new_occurrence


def test_baseline_json_round_trip_and_rejects_garbage() -> None:
    baseline = Baseline("S1", {"1": 4}, {"EGS": EventState("k", True)})
    assert Baseline.from_json_dict(baseline.to_json_dict()) == baseline
    with pytest.raises(ValueError, match="malformed"):
        Baseline.from_json_dict({"machine_serial": "S1", "counters": {"1": -3}, "events": {}})
    with pytest.raises(ValueError, match="malformed"):
        Baseline.from_json_dict({"counters": []})


def test_since_reset_counters_for_animo_style_machines() -> None:
    def audit(paid_init: int, paid_reset: int) -> Audit:
        sel = Selection(id="1", vends=paid_init, vends_since_reset=paid_reset,
                        free_vends=0, free_vends_since_reset=1)
        return Audit(identity=Identity(serial="A"), selections=(sel,))

    base = diff(None, audit(10, 100), since_reset=True).baseline
    assert dict(base.counters) == {"1": 101}
    assert diff(base, audit(10, 103), since_reset=True).vends == {"1": 3}
