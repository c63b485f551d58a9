"""The fleet's demand and refill loop, with in-memory machines (no ports, no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from firmware_agent.wire.payloads import VendResult
from simulators.fleet import Fleet, FleetSettings
from simulators.fleet_plan import MachineSpec, plan_fleet
from simulators.scenario import Scenario, ScenarioError, parse_scenario
from tests.waiting import wait_until

START = datetime(2026, 11, 24, 8, tzinfo=UTC)


class CountingMachine:
    """A machine that only counts: EMPTY when a slot has nothing left."""

    def __init__(self, spec: MachineSpec) -> None:
        self.spec = spec
        self.counts = {s.slot: s.count for s in spec.slots}
        self.vends: list[tuple[int, VendResult]] = []
        self.refills = 0
        self.started = False
        self.broken = False
        self.temperatures: list[float] = []
        self.door_open = False
        self.dark = False
        self.jams = 0

    @property
    def machine_id(self) -> str:
        return self.spec.machine_id

    def start(self) -> None:
        self.started = True

    def vend(self, slot: int) -> VendResult:
        if self.broken:
            raise OSError("link down")
        result = VendResult.OK if self.counts[slot] > 0 else VendResult.EMPTY
        if result is VendResult.OK:
            self.counts[slot] -= 1
        self.vends.append((slot, result))
        return result

    def refill(self) -> None:
        self.counts = {s.slot: s.capacity for s in self.spec.slots}
        self.refills += 1

    def restock(self, slot: int, count: int) -> None:
        self.counts[slot] = count

    def set_temperature(self, celsius: float) -> None:
        self.temperatures.append(celsius)

    def set_door_open(self, is_open: bool) -> None:
        self.door_open = is_open

    def jam(self, count: int) -> None:
        self.jams += count

    def set_dark(self, dark: bool) -> None:
        self.dark = dark

    def settled(self) -> bool:
        return True

    def stop(self) -> None:
        self.started = False


def _fleet(
    n: int = 6, *, started: bool = True, scenario: Scenario | None = None, **settings: object
) -> tuple[Fleet, dict[str, CountingMachine]]:
    made: dict[str, CountingMachine] = {}

    def factory(spec: MachineSpec) -> CountingMachine:
        made[spec.machine_id] = CountingMachine(spec)
        return made[spec.machine_id]

    fleet = Fleet(
        plan_fleet(n, seed=9),
        factory,
        FleetSettings(start=START, **settings),  # type: ignore[arg-type]
        scenario=scenario,
    )
    if started:
        fleet.start_machines()
    return fleet, made


def test_a_day_of_demand_vends_and_the_fleet_tracks_the_stock() -> None:
    fleet, made = _fleet(restock_after=timedelta(days=30))
    visits = fleet.step(START, START + timedelta(days=1))
    expected_mean = sum(spec.per_day for spec in fleet.specs.values())
    assert 0.5 * expected_mean < visits < 1.5 * expected_mean
    assert fleet.stats.attempts == visits == sum(len(m.vends) for m in made.values())
    assert fleet.stats.dispensed == sum(
        1 for m in made.values() for _, r in m.vends if r is VendResult.OK
    )
    for machine_id, machine in made.items():
        assert fleet.stock(machine_id) == machine.counts


def test_an_empty_machine_is_refilled_after_the_delay() -> None:
    fleet, made = _fleet(n=1, restock_after=timedelta(hours=2))
    machine = next(iter(made.values()))
    machine.counts = dict.fromkeys(machine.counts, 0)
    fleet._counts = {k: 0 for k in fleet._counts}  # the fleet saw the same empty machine
    t = START + timedelta(hours=12)  # busy hours: someone comes and finds it empty
    fleet.step(START, t)
    assert fleet.stats.refused.get("empty", 0) >= 1
    assert machine.refills == 0
    fleet.step(t, t + timedelta(hours=2))
    assert machine.refills == 1
    assert fleet.stats.refills == 1
    assert all(n > 0 for n in fleet.stock(machine.machine_id).values())


def test_a_failing_machine_is_counted_and_the_rest_keep_going() -> None:
    fleet, made = _fleet(n=3)
    broken = made["phl-001"]
    broken.broken = True
    fleet.step(START, START + timedelta(days=1))
    assert fleet.stats.errors > 0
    assert broken.vends == []
    assert any(m.vends for mid, m in made.items() if mid != "phl-001")


def test_the_demand_thread_runs_on_the_accelerated_clock_and_stops() -> None:
    fleet, made = _fleet(n=4, started=False, speed=36_000.0, tick_s=0.05)
    fleet.start()
    try:
        wait_until(lambda: fleet.stats.attempts >= 5, what="simulated visitors")
        assert fleet.now() > START + timedelta(minutes=10)
    finally:
        fleet.stop()
    assert len(made) == 4
    assert not any(m.started for m in made.values())
    assert fleet.machines == {}


STORY = """
name = "story"
[[event]]
kind = "heat"
start_h = 1
duration_h = 2
celsius = 41
sites = ["Kensington"]

[[event]]
kind = "dark"
start_h = 1
duration_h = 3
machines = ["phl-002"]

[[event]]
kind = "tamper"
start_h = 2
duration_h = 1

[[event]]
kind = "jam"
start_h = 0
duration_h = 1
count = 2
machines = ["phl-003"]
"""


def test_scenario_events_reach_their_machines_at_their_times() -> None:
    fleet, made = _fleet(n=3, scenario=parse_scenario(STORY))
    kensington, dark, jammed = made["phl-001"], made["phl-002"], made["phl-003"]
    fleet.step(START, START + timedelta(minutes=30))
    assert jammed.jams == 2
    fleet.step(START + timedelta(minutes=30), START + timedelta(hours=1, minutes=30))
    assert kensington.temperatures == [41.0]
    assert dark.dark
    assert jammed.temperatures == []  # not in Kensington
    fleet.step(START + timedelta(hours=1, minutes=30), START + timedelta(hours=2, minutes=30))
    assert all(m.door_open for m in made.values())  # a tamper with no target hits all
    fleet.step(START + timedelta(hours=2, minutes=30), START + timedelta(hours=5))
    assert kensington.temperatures == [41.0, 20.0]
    assert not dark.dark
    assert not any(m.door_open for m in made.values())
    assert fleet.stats.scenario_steps == 8  # four events, each begins and ends


def test_a_surge_multiplies_demand_where_it_applies() -> None:
    surge = parse_scenario(
        'name = "s"\n[[event]]\nkind = "surge"\nstart_h = 0\nduration_h = 48\n'
        'multiplier = 6\nmachines = ["phl-001"]'
    )
    calm, calm_made = _fleet(n=2, restock_after=timedelta(days=30))
    busy, busy_made = _fleet(n=2, scenario=surge, restock_after=timedelta(days=30))
    for fleet in (calm, busy):
        fleet.step(START, START + timedelta(days=1))
    assert len(busy_made["phl-001"].vends) > 3 * len(calm_made["phl-001"].vends)


def test_a_scenario_naming_absent_machines_is_refused() -> None:
    bad = parse_scenario(
        'name = "b"\n[[event]]\nkind = "dark"\nstart_h = 0\nduration_h = 1\n'
        'machines = ["phl-099"]'
    )
    with pytest.raises(ScenarioError, match="phl-099"):
        _fleet(n=2, scenario=bad)


def test_history_is_replayed_before_the_live_run_and_the_clock_continues() -> None:
    fleet, made = _fleet(
        n=4, started=False, history=timedelta(days=2), tick_s=0.05, speed=60.0
    )
    assert fleet.now() == START - timedelta(days=2)
    fleet.start()
    try:
        expected = sum(
            fleet.model.expected(s.per_day, START - timedelta(days=2), START)
            for s in fleet.specs.values()
        )
        replayed = fleet.stats.attempts
        assert 0.5 * expected < replayed < 1.5 * expected
        assert fleet.now() >= START
        wait_until(lambda: fleet.now() > START + timedelta(seconds=30), what="the live clock")
    finally:
        fleet.stop()
    assert sum(len(m.vends) for m in made.values()) >= replayed


def test_a_broker_outage_is_handed_to_the_broker_control_once_each_way() -> None:
    outage = parse_scenario(
        'name = "o"\n[[event]]\nkind = "broker"\nstart_h = 1\nduration_h = 2\n'
    )
    calls: list[bool] = []
    fleet = Fleet(
        plan_fleet(3, seed=9),
        CountingMachine,
        FleetSettings(start=START),
        scenario=outage,
        broker_control=calls.append,
    )
    fleet.start_machines()
    fleet.step(START, START + timedelta(hours=2))
    assert calls == [True]
    fleet.step(START + timedelta(hours=2), START + timedelta(hours=4))
    assert calls == [True, False]
    uncontrolled, _ = _fleet(n=2, scenario=outage)
    uncontrolled.step(START, START + timedelta(hours=4))  # logs a warning and goes on
    assert uncontrolled.stats.errors == 0
