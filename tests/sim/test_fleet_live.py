"""The fleet end to end on the wire: virtual controllers on ptys, real agents, real Mosquitto."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_agent.wire.payloads import (
    MachineState,
    Status,
    StockSnapshot,
    TemperatureEvent,
    VendEvent,
    VendResult,
    parse_event,
    parse_model,
)
from firmware_agent.wire.topics import Channel
from simulators.broker import MosquittoBroker
from simulators.fleet import Fleet, FleetSettings
from simulators.fleet_plan import MachineSpec, plan_fleet
from simulators.planogram import PlanogramError, push_planograms
from simulators.scenario import parse_scenario
from simulators.sim_machine import AgentTimings, SimMachine
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES
from tests.sim.mqtt_watch import FleetWatch
from tests.waiting import wait_until

LIVE_WAIT_S = 60.0


def _machine_factory(
    broker: MosquittoBroker, data_dir: Path, made: dict[str, SimMachine]
) -> Callable[[MachineSpec], SimMachine]:
    """Build SimMachines on ``broker``, keeping each in ``made`` by machine id."""

    def factory(spec: MachineSpec) -> SimMachine:
        made[spec.machine_id] = SimMachine(
            spec,
            password=TEST_MACHINES[spec.machine_id],
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            data_dir=data_dir,
            timings=AgentTimings(heartbeat_s=1.0),
        )
        return made[spec.machine_id]

    return factory


def _fleet(
    specs: list[MachineSpec], broker: MosquittoBroker, data_dir: Path
) -> tuple[Fleet, dict[str, SimMachine]]:
    made: dict[str, SimMachine] = {}
    fleet = Fleet(
        specs,
        _machine_factory(broker, data_dir, made),
        FleetSettings(
            speed=20_000.0,
            tick_s=0.1,
            restock_after=timedelta(hours=1),
            start=datetime(2026, 11, 24, 12, tzinfo=UTC),
        ),
    )
    return fleet, made


def test_fleet_vends_reach_the_broker_with_matching_stock(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    specs = plan_fleet(3, seed=5, mean_per_day=40.0, prefix="test")
    fleet, made = _fleet(specs, mosquitto, tmp_path)
    with FleetWatch(mosquitto.host, mosquitto.port, BACKEND_USER, BACKEND_PASSWORD) as watch:
        fleet.start()
        try:
            wait_until(lambda: fleet.stats.dispensed >= 20, LIVE_WAIT_S, "20 simulated dispenses")
            fleet.pause()  # no more visitors; the machines keep running
            controllers = {mid: m.controller for mid, m in made.items() if m.controller}
            assert len(controllers) == 3

            def all_vends_published() -> bool:
                return all(
                    len(_vends(watch, mid)) >= len(c.vend_results) for mid, c in controllers.items()
                )

            wait_until(all_vends_published, LIVE_WAIT_S, "every vend to be published")
            for machine_id, controller in controllers.items():
                events = _vends(watch, machine_id)
                # Each vend once, in order, with the controller's own result.
                got = [(e.boot_id, e.seq, e.slot, e.result.value) for e in events]
                assert [(e.slot, e.result) for e in events] == controller.vend_results, (
                    got, controller.vend_results)
                assert len({e.seq for e in events}) == len(events)

                def stock_matches(mid: str = machine_id) -> bool:
                    snaps = watch.payloads(Channel.STOCK, mid)
                    if not snaps:
                        return False
                    latest = parse_model(StockSnapshot, snaps[-1])
                    return {s.slot: s.count for s in latest.slots} == controllers[mid].counts

                try:
                    wait_until(stock_matches, LIVE_WAIT_S, f"{machine_id}'s stock snapshot")
                except AssertionError as exc:
                    last = watch.payloads(Channel.STOCK, machine_id)[-1:]
                    raise AssertionError(f"{exc}: want {controller.counts}, last {last}") from None
                status = parse_model(Status, watch.payloads(Channel.STATUS, machine_id)[-1])
                assert status.state is MachineState.ONLINE
            assert fleet.stats.dispensed == sum(
                1 for c in controllers.values() for _, r in c.vend_results if r is VendResult.OK
            )
        finally:
            fleet.stop()
    assert fleet.machines == {}


def _vends(watch: FleetWatch, machine_id: str) -> list[VendEvent]:
    events = [parse_event(raw) for raw in watch.payloads(Channel.EVENTS, machine_id)]
    return [e for e in events if isinstance(e, VendEvent)]


def test_a_machine_that_goes_dark_loses_nothing_and_reports_heat(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    spec = plan_fleet(1, seed=8, prefix="test")[0]
    machine = SimMachine(
        spec,
        password=TEST_MACHINES[spec.machine_id],
        mqtt_host=mosquitto.host,
        mqtt_port=mosquitto.port,
        data_dir=tmp_path,
        timings=AgentTimings(heartbeat_s=1.0),
    )
    with FleetWatch(mosquitto.host, mosquitto.port, BACKEND_USER, BACKEND_PASSWORD) as watch:
        machine.start()
        try:
            machine.vend(1)
            wait_until(lambda: len(_vends(watch, spec.machine_id)) == 1, LIVE_WAIT_S, "a vend")
            machine.set_dark(True)
            for slot in (1, 2, 3):  # sold while the Pi is dark
                machine.vend(slot)
            machine.set_temperature(43.0)
            machine.set_dark(False)
            wait_until(
                lambda: len(_vends(watch, spec.machine_id)) == 4, LIVE_WAIT_S, "the dark vends"
            )
            assert [e.slot for e in _vends(watch, spec.machine_id)] == [1, 1, 2, 3]

            def heat_reported() -> bool:
                events = [parse_event(r) for r in watch.payloads(Channel.EVENTS, spec.machine_id)]
                return any(isinstance(e, TemperatureEvent) and e.excursion for e in events)

            wait_until(heat_reported, LIVE_WAIT_S, "a temperature excursion event")
            boots = {parse_model(Status, r).boot_id for r in watch.payloads(Channel.STATUS)}
            assert len(boots) == 2  # the agent came back as a new boot
        finally:
            machine.stop()


def test_history_replay_stamps_simulated_device_times(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    origin = datetime(2026, 11, 24, 12, tzinfo=UTC)
    specs = plan_fleet(2, seed=6, mean_per_day=30.0, prefix="test")
    holder: list[Fleet] = []

    def factory(spec: MachineSpec) -> SimMachine:
        return SimMachine(
            spec,
            password=TEST_MACHINES[spec.machine_id],
            mqtt_host=mosquitto.host,
            mqtt_port=mosquitto.port,
            data_dir=tmp_path,
            timings=AgentTimings(heartbeat_s=1.0),
            clock=lambda: holder[0].now(),
        )

    fleet = Fleet(
        specs,
        factory,
        FleetSettings(speed=60.0, tick_s=0.2, start=origin, history=timedelta(days=1)),
    )
    holder.append(fleet)
    with FleetWatch(mosquitto.host, mosquitto.port, BACKEND_USER, BACKEND_PASSWORD) as watch:
        fleet.start()
        try:
            replayed = fleet.stats.attempts
            assert replayed > 10

            def all_published() -> bool:
                return sum(len(_vends(watch, s.machine_id)) for s in specs) >= replayed

            wait_until(all_published, LIVE_WAIT_S, "the replayed vends")
        finally:
            fleet.stop()
    for spec in specs:
        times = [e.device_time for e in _vends(watch, spec.machine_id)]
        assert times == sorted(times)
        history = [t for t in times if t < origin]
        assert history, "the replay should stamp days before the live run"
        assert min(history) >= origin - timedelta(days=1)
        # Replayed events spread over the day, not bunched at the moment they were sent.
        assert max(history) - min(history) > timedelta(hours=6)


def test_planograms_reach_the_agents_and_name_the_products(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    specs = plan_fleet(3, seed=2, prefix="test")
    fleet, made = _fleet(specs, mosquitto, tmp_path)
    with FleetWatch(mosquitto.host, mosquitto.port, BACKEND_USER, BACKEND_PASSWORD) as watch:
        fleet.start_machines()
        try:
            results = push_planograms(
                specs,
                host=mosquitto.host,
                port=mosquitto.port,
                username=BACKEND_USER,
                password=BACKEND_PASSWORD,
            )
            assert sorted(results) == [s.machine_id for s in specs]
            for spec in specs:
                made[spec.machine_id].vend(3)
            for spec in specs:
                wait_until(lambda mid=spec.machine_id: bool(_vends(watch, mid)), LIVE_WAIT_S)
                assert _vends(watch, spec.machine_id)[0].product == spec.slots[2].product
                snapshot = parse_model(
                    StockSnapshot, watch.payloads(Channel.STOCK, spec.machine_id)[-1]
                )
                assert [(s.product, s.capacity) for s in snapshot.slots] == [
                    (s.product, s.capacity) for s in spec.slots
                ]
        finally:
            fleet.stop()


def test_planograms_to_a_silent_machine_time_out_clearly(mosquitto: MosquittoBroker) -> None:
    with pytest.raises(PlanogramError, match="no planogram result from test-009"):
        push_planograms(
            plan_fleet(9, prefix="test")[8:],
            host=mosquitto.host,
            port=mosquitto.port,
            username=BACKEND_USER,
            password=BACKEND_PASSWORD,
            timeout_s=2.0,
        )


def test_vends_during_a_broker_outage_arrive_once_when_it_is_back(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    outage = parse_scenario(
        'name = "o"\n[[event]]\nkind = "broker"\nstart_h = 1\nduration_h = 2\n'
    )
    specs = plan_fleet(2, seed=4, mean_per_day=60.0, prefix="test")
    made: dict[str, SimMachine] = {}
    factory = _machine_factory(mosquitto, tmp_path, made)

    def switch(down: bool) -> None:
        if down:
            mosquitto.stop()
        else:
            mosquitto.start()

    origin = datetime(2026, 11, 24, 12, tzinfo=UTC)
    fleet = Fleet(
        specs, factory, FleetSettings(start=origin), scenario=outage, broker_control=switch
    )
    watch = FleetWatch(
        mosquitto.host, mosquitto.port, BACKEND_USER, BACKEND_PASSWORD, persistent=True
    )
    with watch:
        fleet.start_machines()
        try:
            # Scenario events apply at the start of the step that contains them.
            just_before_up = origin + timedelta(hours=3) - timedelta(seconds=1)
            fleet.step(origin, origin + timedelta(hours=1))
            before = fleet.stats.attempts
            fleet.step(origin + timedelta(hours=1), just_before_up)
            assert not mosquitto.running
            assert fleet.stats.attempts > before  # people vended while it was down
            fleet.step(just_before_up, origin + timedelta(hours=4))
            assert mosquitto.running
            controllers = {mid: m.controller for mid, m in made.items() if m.controller}

            def unique_vends(machine_id: str) -> list[VendEvent]:
                # At least once: a publish whose PUBACK the outage swallowed comes
                # again with the same event id; the backend's unique key absorbs it.
                by_id = {e.event_id: e for e in _vends(watch, machine_id)}
                return sorted(by_id.values(), key=lambda e: (e.boot_id, e.seq))

            def all_arrived() -> bool:
                return all(
                    len(unique_vends(mid)) >= len(c.vend_results)
                    for mid, c in controllers.items()
                )

            wait_until(all_arrived, LIVE_WAIT_S, "every vend after the outage")
            for machine_id, controller in controllers.items():
                events = unique_vends(machine_id)
                assert [(e.slot, e.result) for e in events] == controller.vend_results
        finally:
            fleet.stop()
