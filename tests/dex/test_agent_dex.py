"""The whole path for a commercial machine: virtual DEX port -> real agent -> real Mosquitto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_agent.agent import Agent
from firmware_agent.drivers import make_driver
from firmware_agent.drivers.dex import DexDriver
from simulators.broker import MosquittoBroker
from simulators.virtual_dex import VirtualDexMachine
from tests.agent.helpers import (
    MACHINE,
    Collector,
    agent_settings,
    command_result,
    send_command,
    wait_until,
)
from tests.dex.conftest import MACHINE_RESPONSE_S

POLL_S = 0.2


@pytest.fixture
def collector(mosquitto: MosquittoBroker) -> Iterator[Collector]:
    c = Collector(mosquitto, client_id="dex-collector")
    yield c
    c.close()


def dex_vends(collector: Collector) -> list[dict[str, object]]:
    return [e for e in collector.on("events") if e["kind"] == "vend"]


def test_make_driver_builds_the_dex_driver(
    mosquitto: MosquittoBroker, machine: VirtualDexMachine, tmp_path: Path
) -> None:
    settings = agent_settings(mosquitto, tmp_path, machine.port, driver="dex", dex_poll_s=7.0)
    driver = make_driver(settings)
    assert isinstance(driver, DexDriver)
    assert driver.name == "dex"


def test_dex_vends_reach_the_broker_once_across_an_agent_restart(
    mosquitto: MosquittoBroker, machine: VirtualDexMachine, collector: Collector,
    tmp_path: Path,
) -> None:
    settings = agent_settings(mosquitto, tmp_path, machine.port, driver="dex", dex_poll_s=POLL_S)
    machine.vend("1", count=4)  # history from before the agent: not reported
    agent = Agent(settings)
    agent.start()
    try:
        wait_until(lambda: machine.audits_served >= 1, what="first audit")
        machine.vend("1", count=2)
        machine.vend("2")
        wait_until(lambda: len(dex_vends(collector)) >= 3, what="3 vend events")
        wait_until(lambda: agent.outbox_depth == 0, what="outbox drained")
    finally:
        agent.stop()
    first_boot = agent.boot_id
    machine.vend("2", count=2)  # while the agent is down
    agent = Agent(settings)
    agent.start()
    try:
        wait_until(lambda: len(dex_vends(collector)) >= 5, what="5 vend events")
        served = machine.audits_served
        wait_until(lambda: machine.audits_served >= served + 3, what="three more polls")
        wait_until(lambda: agent.outbox_depth == 0, what="outbox drained")
    finally:
        agent.stop()
    vends = dex_vends(collector)
    assert len(vends) == 5  # nothing lost, nothing doubled
    assert len({e["event_id"] for e in vends}) == 5
    assert sorted(e["slot"] for e in vends) == [1, 1, 2, 2, 2]
    assert all(e["source"] == "dex" and e["result"] == "ok" for e in vends)
    assert all(e["machine_id"] == MACHINE for e in vends)
    assert {e["boot_id"] for e in vends} == {first_boot, first_boot + 1}



def test_dex_agent_answers_commands_it_cannot_carry_out_with_an_error(
    mosquitto: MosquittoBroker, machine: VirtualDexMachine, collector: Collector,
    tmp_path: Path,
) -> None:
    settings = agent_settings(mosquitto, tmp_path, machine.port, driver="dex", dex_poll_s=POLL_S)
    agent = Agent(settings)
    agent.start()
    try:
        wait_until(lambda: bool(collector.on("status")), what="agent online")
        send_command(collector, {"command_id": "d1", "kind": "authorize_vend", "slot": 1,
                                 "ttl_s": 30})
        send_command(collector, {"command_id": "d2", "kind": "lock"})
        auth, lock = command_result(collector, "d1"), command_result(collector, "d2")
    finally:
        agent.stop()
    assert auth["ok"] is False
    assert auth["error"] == "dex cannot authorise vends"
    assert lock["ok"] is False
    assert lock["error"] == "dex cannot lock"


def test_the_configured_slot_map_places_dex_vends_in_their_slots(
    mosquitto: MosquittoBroker, collector: Collector, tmp_path: Path,
) -> None:
    vm = VirtualDexMachine({"A1": ("NALOXONE NASAL 4MG", 0), "B2": ("NALOXONE IM 0.4MG", 0),
                            "9": ("WOUND CARE", 0), "Z9": ("TEST KIT", 0)},
                           response_s=MACHINE_RESPONSE_S)
    vm.start()
    settings = agent_settings(mosquitto, tmp_path, vm.port, driver="dex", dex_poll_s=POLL_S,
                              dex_slot_map={"A1": 4, "B2": 5})
    agent = Agent(settings)
    agent.start()
    try:
        wait_until(lambda: vm.audits_served >= 1, what="first audit")
        vm.vend("A1", count=2)
        vm.vend("B2")
        vm.vend("9")
        vm.vend("Z9", count=3)  # neither mapped nor a slot number
        wait_until(lambda: len(dex_vends(collector)) >= 4, what="4 vend events")
        wait_until(lambda: agent.driver.counters()["dex_unmapped_vends"] == 3,
                   what="the unmapped vends counted")
    finally:
        agent.stop()
        vm.stop()
    assert sorted(e["slot"] for e in dex_vends(collector)) == [4, 4, 5, 9]
