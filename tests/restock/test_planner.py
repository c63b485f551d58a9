"""The planner's pure parts: what a machine needs; routes that keep to the shift and the vans."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.restock.distances import (
    MatrixFileError,
    from_coordinates,
    from_file,
    haversine_m,
    read_matrix_file,
)
from backend.restock.inputs import parse_depot, shift_start_of
from backend.restock.lots_input import replace_by as lot_replace_by
from backend.restock.model import Matrix, Plan, Point, Shift, SlotLoad, Stop, Urgency
from backend.restock.needs import (
    Horizon,
    MachineState,
    ServiceTime,
    SlotState,
    stop_for,
    target_par,
)
from backend.restock.routing import solve

START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
DEPOT = Point(40.75, -73.98)
SERVICE = ServiceTime(base_minutes=8, per_item_minutes=0.5)


def _stop(machine_id: str, at: Point, urgency: Urgency, items: int, service_s: int = 600
          ) -> Stop:
    load = SlotLoad(1, "naloxone-nasal-4mg", True, 0, items, items)
    return Stop(machine_id, machine_id, at, urgency, (urgency.value,), (load,), service_s)


def _shift(*, hours: float, vans: int = 1, capacity: int = 100) -> Shift:
    return Shift(DEPOT, START, hours, vans, capacity, solver_seconds=0.05)


def _matrix(stops: list[Stop]) -> Matrix:
    return from_coordinates(DEPOT, [s.at for s in stops], detour_factor=1.3, speed_kmh=25)


def assert_feasible(plan: Plan, shift: Shift, stops: list[Stop], matrix: Matrix) -> None:
    """Every van keeps to the shift, its capacity and each stop's service and driving time."""
    row = {s.machine_id: i + 1 for i, s in enumerate(stops)}
    by_id = {s.machine_id: s for s in stops}
    seen: list[str] = []
    shift_end = START + timedelta(seconds=shift.seconds)
    for van in plan.vans:
        assert sum(s.items for s in van.stops) == van.items <= shift.van_capacity
        here, free_at = 0, START
        for stop in van.stops:
            drive = timedelta(seconds=matrix.duration_s[here][row[stop.machine_id]])
            assert stop.arrival >= free_at + drive - timedelta(seconds=1)
            assert stop.departure - stop.arrival == timedelta(
                seconds=by_id[stop.machine_id].service_s)
            here, free_at = row[stop.machine_id], stop.departure
            seen.append(stop.machine_id)
        back = free_at + timedelta(seconds=matrix.duration_s[here][0])
        assert back <= van.return_time + timedelta(seconds=1)
        assert van.return_time <= shift_end
    assert len(seen) == len(set(seen))
    left = [o.machine_id for o in plan.left_out]
    assert sorted(seen + left) == sorted(by_id)


coordinate = st.tuples(st.floats(40.65, 40.85), st.floats(-74.08, -73.88))


@given(
    places=st.lists(st.tuples(coordinate, st.sampled_from(list(Urgency)),
                              st.integers(1, 40), st.integers(60, 1800),
                              st.none() | st.integers(-3600, 5 * 3600)), max_size=8),
    vans=st.integers(1, 3),
    capacity=st.integers(1, 80),
    hours=st.floats(0.25, 4),
)
def test_every_route_respects_shift_capacity_and_service_times(
    places: list[tuple[tuple[float, float], Urgency, int, int, int | None]], vans: int,
    capacity: int, hours: float,
) -> None:
    # Some stops are due (naloxone forecast to run out) before, during or after the shift.
    stops = [replace(_stop(f"m-{i}", Point(*at), urgency, items, service),
                     due=None if due is None else START + timedelta(seconds=due))
             for i, (at, urgency, items, service, due) in enumerate(places)]
    shift, matrix = _shift(hours=hours, vans=vans, capacity=capacity), _matrix(stops)
    plan = solve(shift, stops, matrix)
    assert_feasible(plan, shift, stops, matrix)


def test_critical_and_urgent_stops_are_chosen_over_routine_ones() -> None:
    # Room for about three stops: three routine ones sit next to the depot, the
    # critical and urgent ones farther out; the pressing ones must go first.
    near = [_stop(f"routine-{i}", Point(40.751 + i / 1000, -73.98), Urgency.ROUTINE, 20,
                  service_s=900) for i in range(3)]
    # About 7 minutes' drive each way from the depot, on opposite sides.
    far = [_stop("critical-1", Point(40.77, -73.98), Urgency.CRITICAL, 5),
           _stop("urgent-1", Point(40.73, -73.98), Urgency.URGENT, 5)]
    stops = near + far
    shift, matrix = _shift(hours=1.0), _matrix(stops)
    plan = solve(shift, stops, matrix)
    assert_feasible(plan, shift, stops, matrix)
    served = {s.machine_id for v in plan.vans for s in v.stops}
    assert {"critical-1", "urgent-1"} <= served
    assert served != set(s.machine_id for s in stops), "the shift should not fit every stop"
    assert [o.urgency for o in plan.left_out] == ["routine"] * len(plan.left_out)
    # With one more hour, the routine stops near the depot are worth it too.
    roomy = solve(_shift(hours=3.0), stops, matrix)
    assert roomy.served == len(stops)
    assert not roomy.left_out


@pytest.mark.parametrize("due_machine", ["west", "east"])
def test_a_machine_due_to_run_out_at_noon_is_reached_before_noon(due_machine: str) -> None:
    # One van from 08:00; four urgent stops to the north take an hour each. West
    # and east of the depot are one critical machine each: a tour visits one of
    # them first and the other after the four hours up north, whichever way it
    # goes, for the same distance. Only the due time says which comes first, so
    # both parametrisations pass only if the due time orders the stops.
    north = [_stop(f"north-{i}", Point(40.768 + i / 1000, -73.98 + i / 1000), Urgency.URGENT,
                   5, service_s=3600) for i in range(4)]
    west = _stop("west", Point(40.75, -74.004), Urgency.CRITICAL, 5)
    east = _stop("east", Point(40.75, -73.956), Urgency.CRITICAL, 5)
    noon = START.replace(hour=12)
    stops = [*north, *(replace(s, due=noon) if s.machine_id == due_machine else s
                       for s in (west, east))]
    shift, matrix = _shift(hours=8), _matrix(stops)
    plan = solve(shift, stops, matrix)
    assert_feasible(plan, shift, stops, matrix)
    assert plan.served == len(stops)
    arrival = {s.machine_id: s.arrival for s in plan.vans[0].stops}
    assert arrival[due_machine] < noon, [s.machine_id for s in plan.vans[0].stops]
    [stop] = [s for s in plan.vans[0].stops if s.machine_id == due_machine]
    assert stop.due == noon
    other = "east" if due_machine == "west" else "west"
    assert arrival[other] > noon  # the tour really could have come too late


def test_critical_beats_urgent_when_only_one_fits() -> None:
    stops = [_stop("urgent-1", Point(40.76, -73.98), Urgency.URGENT, 5, service_s=1500),
             _stop("critical-1", Point(40.74, -73.98), Urgency.CRITICAL, 5, service_s=1500)]
    plan = solve(_shift(hours=0.75), stops, _matrix(stops))
    assert [s.machine_id for s in plan.vans[0].stops] == ["critical-1"]
    assert plan.left_out[0].machine_id == "urgent-1"
    assert "no time or van room" in plan.left_out[0].reason


def test_doses_that_must_come_out_today_beat_an_empty_slot_when_only_one_fits() -> None:
    # Both critical; one holds naloxone that expires before the next shift.
    empty = _stop("empty", Point(40.76, -73.98), Urgency.CRITICAL, 5, service_s=1500)
    expiring = replace(_stop("expiring", Point(40.74, -73.98), Urgency.CRITICAL, 5,
                             service_s=1500), swap_now=True)
    for stops in ([empty, expiring], [expiring, empty]):
        plan = solve(_shift(hours=0.75), stops, _matrix(stops))
        assert [s.machine_id for s in plan.vans[0].stops] == ["expiring"]
    horizon = Horizon.after(START, START + timedelta(hours=24))
    soon = _machine(_slot(10, replace=2, replace_by=START + timedelta(hours=20)))
    later = _machine(_slot(10, replace=2, replace_by=START + timedelta(days=3)))
    assert stop_for(soon, default_par=None, service=SERVICE, horizon=horizon).swap_now  # type: ignore[union-attr]
    assert not stop_for(later, default_par=None, service=SERVICE, horizon=horizon).swap_now  # type: ignore[union-attr]


def test_stops_no_van_can_serve_are_left_out_with_the_reason() -> None:
    stops = [_stop("too-big", Point(40.76, -73.98), Urgency.CRITICAL, 500),
             _stop("too-far", Point(42.0, -73.98), Urgency.CRITICAL, 5)]
    plan = solve(_shift(hours=2, capacity=100), stops, _matrix(stops))
    reasons = {o.machine_id: o.reason for o in plan.left_out}
    assert "more than a van holds (100)" in reasons["too-big"]
    assert "longer than the shift" in reasons["too-far"]
    assert plan.served == 0
    assert plan.distance_km == 0


def test_load_list_distance_and_times_add_up() -> None:
    stops = [_stop("a", Point(40.76, -73.98), Urgency.URGENT, 7),
             _stop("b", Point(40.76, -73.97), Urgency.URGENT, 4)]
    matrix = _matrix(stops)
    plan = solve(_shift(hours=4), stops, matrix)
    (van,) = plan.vans
    assert van.items == 11
    assert [(p.product, p.quantity) for p in van.load_list] == [
        ("naloxone-nasal-4mg", 11)]
    order = [0, *(1 + [s.machine_id for s in stops].index(x.machine_id) for x in van.stops), 0]
    metres = sum(matrix.distance_m[a][b] for a, b in itertools.pairwise(order))
    assert van.distance_km == pytest.approx(metres / 1000, abs=0.001)
    assert plan.distance_km == van.distance_km
    assert van.service_minutes == 20.0


def _slot(count: int, *, par: int | None = None, capacity: int = 10, naloxone: bool = True,
          **extra: object) -> SlotState:
    return SlotState(1, "naloxone-nasal-4mg" if naloxone else "test-strips", naloxone, count,
                     capacity, par, 2, **extra)  # type: ignore[arg-type]


def _machine(*slots: SlotState, alerts: frozenset[str] = frozenset()) -> MachineState:
    numbered = tuple(replace(s, slot=n) for n, s in enumerate(slots, 1))
    return MachineState("m-1", "M", DEPOT, numbered, alerts)


def test_par_is_own_then_default_then_capacity_never_above_capacity() -> None:
    assert target_par(_slot(0, par=6), default_par=8) == 6
    assert target_par(_slot(0), default_par=8) == 8
    assert target_par(_slot(0), default_par=None) == 10
    assert target_par(_slot(0, par=50), default_par=None) == 10


def test_urgency_from_slots_forecast_alerts_and_replacements() -> None:
    def urgency(machine: MachineState) -> Urgency | None:
        stop = stop_for(machine, default_par=None, service=SERVICE)
        return None if stop is None else stop.urgency

    assert urgency(_machine(_slot(10))) is None
    assert urgency(_machine(_slot(7))) is Urgency.ROUTINE
    assert urgency(_machine(_slot(2))) is Urgency.URGENT  # at the low threshold
    assert urgency(_machine(_slot(0, naloxone=False))) is Urgency.URGENT
    assert urgency(_machine(_slot(0))) is Urgency.CRITICAL
    assert urgency(_machine(_slot(6, stockout_before_next_shift=True))) is Urgency.CRITICAL
    assert urgency(_machine(_slot(10), alerts=frozenset({"predicted_stockout"}))
                   ) is Urgency.CRITICAL
    assert urgency(_machine(_slot(10), alerts=frozenset({"temperature_excursion"}))
                   ) is Urgency.URGENT
    assert urgency(_machine(_slot(10), alerts=frozenset({"door_open"}))) is None
    replaced = stop_for(_machine(_slot(10, replace=3, replace_lots=("L1",))), default_par=None,
                        service=SERVICE)
    assert replaced is not None
    assert replaced.urgency is Urgency.URGENT
    assert (replaced.items, replaced.loads[0].replace_lots) == (3, ("L1",))
    assert replaced.service_s == round((8 + 0.5 * 3) * 60)


def test_haversine_knows_a_degree_of_latitude() -> None:
    metres = haversine_m([Point(0, 0), Point(1, 0)])
    assert metres[0][1] == pytest.approx(111_195, rel=1e-3)
    assert metres[0][0] == 0


def test_matrix_file_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "matrix.json"
    path.write_text(json.dumps({"ids": ["depot", "m-1", "m-2"],
                                "distance_m": [[0, 10, 20], [10, 0, 30], [20, 30, 0]],
                                "duration_s": [[0, 1, 2], [1, 0, 3], [2, 3, 0]]}))
    ids, distance, duration = read_matrix_file(path)
    sub = from_file(ids, distance, duration, ["m-2"], "file")
    assert sub.distance_m == [[0, 20], [20, 0]]
    assert sub.duration_s == [[0, 2], [2, 0]]
    path.write_text(json.dumps({"ids": ["m-1"], "distance_m": [[0]], "duration_s": [[0]]}))
    with pytest.raises(MatrixFileError, match="depot"):
        read_matrix_file(path)
    path.write_text(json.dumps({"ids": ["depot"], "distance_m": [[-1]], "duration_s": [[0]]}))
    with pytest.raises(MatrixFileError, match="not a distance"):
        read_matrix_file(path)
    with pytest.raises(MatrixFileError, match="cannot read"):
        read_matrix_file(tmp_path / "missing.json")


@pytest.mark.parametrize(("text", "message"), [
    ("91,0", "latitude"), ("0,181", "longitude"), ("north", "not LAT,LON")])
def test_depot_is_checked(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_depot(text)
    assert parse_depot(" 40.7, -74.0 ") == Point(40.7, -74.0)


def test_shift_start_is_utc_and_bounded() -> None:
    assert shift_start_of(datetime(2026, 12, 3, 8)) == START
    with pytest.raises(ValueError, match="between 2000 and 2100"):
        shift_start_of(datetime(1, 1, 1, tzinfo=UTC))


def test_a_routine_stop_far_from_anything_pressing_is_not_routed() -> None:
    # One item below par is worth 1.5 km there and back; this one is 4 km away.
    far = _stop("routine-far", Point(40.735, -73.98), Urgency.ROUTINE, 1)
    near = _stop("routine-near", Point(40.7535, -73.98), Urgency.ROUTINE, 1)
    # The van goes out for a critical stop by the depot; routine stops alone are no trip.
    start = _stop("critical-depot", Point(40.7501, -73.98), Urgency.CRITICAL, 5)
    stops = [far, near, start]
    plan = solve(_shift(hours=4), stops, _matrix(stops))
    assert {s.machine_id for s in plan.vans[0].stops} == {"routine-near", "critical-depot"}
    [left] = plan.left_out
    assert left.machine_id == "routine-far"
    assert left.reason.startswith("routine: ")
    # Next to a critical stop it is on the way.
    critical = _stop("critical", Point(40.7352, -73.98), Urgency.CRITICAL, 5)
    stops = [far, critical]
    plan = solve(_shift(hours=4), stops, _matrix(stops))
    assert {s.machine_id for s in plan.vans[0].stops} == {"routine-far", "critical"}


def test_a_routine_stop_only_a_little_below_par_is_no_stop_even_on_the_way() -> None:
    # 2 of 10 missing (20 %) is below the fill share (40 %); 6 of 10 is above it.
    critical = _stop("critical", Point(40.76, -73.98), Urgency.CRITICAL, 5)
    topped = replace(_stop("topped", Point(40.7601, -73.98), Urgency.ROUTINE, 2),
                     loads=(SlotLoad(1, "naloxone-nasal-4mg", True, 8, 10, 2),))
    depleted = replace(_stop("depleted", Point(40.7602, -73.98), Urgency.ROUTINE, 6),
                       loads=(SlotLoad(1, "naloxone-nasal-4mg", True, 4, 10, 6),))
    stops = [critical, topped, depleted]
    plan = solve(_shift(hours=4), stops, _matrix(stops))
    assert {s.machine_id for s in plan.vans[0].stops} == {"critical", "depleted"}
    [left] = plan.left_out
    assert (left.machine_id, left.reason) == (
        "topped", "routine: 20% below par, less than the 40% worth a stop before it is pressing")


def test_no_van_leaves_the_depot_for_routine_stops_alone() -> None:
    stops = [_stop(f"routine-{i}", Point(40.751 + i / 1000, -73.98), Urgency.ROUTINE, 1)
             for i in range(2)]
    plan = solve(_shift(hours=4, vans=2), stops, _matrix(stops))
    assert plan.served == 0
    assert plan.distance_km == 0
    # One urgent stop takes the van out, and the routine stops beside it come along.
    urgent = _stop("urgent", Point(40.7515, -73.98), Urgency.URGENT, 1)
    stops = [*stops, urgent]
    plan = solve(_shift(hours=4, vans=2), stops, _matrix(stops))
    assert plan.served == 3
    assert sum(1 for v in plan.vans if v.stops) == 1


def test_with_a_horizon_only_what_cannot_wait_for_the_next_shift_is_pressing() -> None:
    horizon = Horizon.after(START, START + timedelta(hours=24))

    def urgency(machine: MachineState) -> Urgency | None:
        stop = stop_for(machine, default_par=None, service=SERVICE, horizon=horizon)
        return None if stop is None else stop.urgency

    def in_days(days: float) -> datetime:
        return START + timedelta(days=days)

    assert urgency(_machine(_slot(2))) is Urgency.ROUTINE  # low, but lasts the night
    assert urgency(_machine(_slot(1, naloxone=False))) is Urgency.ROUTINE
    assert urgency(_machine(_slot(0, naloxone=False))) is Urgency.URGENT
    assert urgency(_machine(_slot(0))) is Urgency.CRITICAL
    assert urgency(_machine(_slot(6, stockout_before_next_shift=True))) is Urgency.CRITICAL
    assert urgency(_machine(_slot(10), alerts=frozenset({"low_stock"}))) is Urgency.ROUTINE
    assert urgency(_machine(_slot(10), alerts=frozenset({"expiring_stock"}))) is Urgency.ROUTINE
    assert urgency(_machine(_slot(10), alerts=frozenset({"heat_exposure"}))) is Urgency.URGENT
    # Doses to replace: by their date, later than the swap window, within it, before
    # the next shift; heat-exposed or expired doses must be out now.
    assert urgency(_machine(_slot(10, replace=3, replace_by=in_days(30)))) is Urgency.ROUTINE
    assert urgency(_machine(_slot(10, replace=3, replace_by=in_days(5)))) is Urgency.URGENT
    assert urgency(_machine(_slot(10, replace=3, replace_by=in_days(0.5)))) is Urgency.CRITICAL
    assert urgency(_machine(_slot(10, replace=3, replace_by=START))) is Urgency.CRITICAL
    assert urgency(_machine(_slot(10, replace=3))) is Urgency.CRITICAL  # unknown: now
    later = stop_for(_machine(_slot(10, replace=3, replace_by=in_days(30))), default_par=None,
                     service=SERVICE, horizon=horizon)
    assert later is not None
    assert later.reasons == ("slot 1: 3 dose(s) to replace",)


def test_a_lot_is_due_out_at_its_expiry_if_only_expiring_else_now() -> None:
    now = START
    assert lot_replace_by(("expiring",), date(2026, 12, 20), now) == datetime(
        2026, 12, 20, tzinfo=UTC)
    assert lot_replace_by(("expiring", "heat:storage"), date(2026, 12, 20), now) == now
    assert lot_replace_by(("expired",), date(2026, 12, 1), now) == now


def test_a_missed_planned_visit_is_overdue_unless_the_machine_needs_nothing() -> None:
    horizon = Horizon.after(START, START + timedelta(hours=24))
    missed = START - timedelta(hours=20)
    below = replace(_machine(_slot(7)), missed_visit=missed)
    stop = stop_for(below, default_par=None, service=SERVICE, horizon=horizon)
    assert stop is not None
    assert stop.urgency is Urgency.URGENT
    assert stop.reasons == ("planned visit at 2026-12-02 12:00 UTC was missed",)
    full = replace(_machine(_slot(10)), missed_visit=missed)
    assert stop_for(full, default_par=None, service=SERVICE, horizon=horizon) is None
