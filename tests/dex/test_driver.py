"""DexDriver end to end: vends on the virtual DEX machine become Vend observations once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from firmware_agent.dex.audit import Audit
from firmware_agent.dex.baseline_store import FILE_NAME
from firmware_agent.dex.link import LinkTimings
from firmware_agent.drivers.base import (
    Batch,
    Door,
    DriverError,
    Fault,
    Hello,
    Observation,
    Temperature,
    Vend,
)
from firmware_agent.drivers.dex import DexDriver
from firmware_agent.wire.payloads import DoorState, VendResult
from simulators.virtual_dex import VirtualDexMachine

READ_S = 0.05


def make_driver(machine: VirtualDexMachine, data_dir: Path, timings: LinkTimings) -> DexDriver:
    return DexDriver(machine.port, data_dir=data_dir, poll_s=0.0, timings=timings, retry_s=0.0)


def vends(batch: Batch) -> list[int]:
    return sorted(o.slot for o in batch.observations if isinstance(o, Vend))


def of_type(batch: Batch, kind: type[Observation]) -> list[Observation]:
    return [o for o in batch.observations if isinstance(o, kind)]


def test_vends_are_reported_exactly_once_across_a_restart(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings
) -> None:
    machine.vend("1", count=5)  # before the agent ever looked: history, not news
    with make_driver(machine, tmp_path, fast_link) as driver:
        first = driver.read(READ_S)
        assert vends(first) == []
        assert isinstance(first.observations[0], Hello)
        driver.commit(first)
        machine.vend("1", count=2)
        machine.vend("2")
        batch = driver.read(READ_S)
        assert vends(batch) == [1, 1, 2]
        assert all(o.result is VendResult.OK for o in batch.observations if isinstance(o, Vend))
        driver.commit(batch)
        assert vends(driver.read(READ_S)) == []  # nothing new, nothing repeated
    assert (tmp_path / FILE_NAME).exists()
    machine.vend("2", count=3)
    with make_driver(machine, tmp_path, fast_link) as restarted:
        batch = restarted.read(READ_S)
        assert vends(batch) == [2, 2, 2]
        restarted.commit(batch)
        assert vends(restarted.read(READ_S)) == []


def test_uncommitted_vends_are_reported_again_after_a_restart(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings
) -> None:
    with make_driver(machine, tmp_path, fast_link) as driver:
        driver.commit(driver.read(READ_S))
        machine.vend("1", count=2)
        assert vends(driver.read(READ_S)) == [1, 1]
        # The agent crashed before the batch was durable: no commit.
    with make_driver(machine, tmp_path, fast_link) as restarted:
        assert vends(restarted.read(READ_S)) == [1, 1]


def test_state_stored_by_the_agent_wins_over_the_file(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings
) -> None:
    with make_driver(machine, tmp_path, fast_link) as driver:
        driver.commit(driver.read(READ_S))
        machine.vend("1", count=2)
        batch = driver.read(READ_S)
        assert batch.state is not None
        # The agent stored the batch and its state, then died before commit().
    machine.vend("1")
    restarted = make_driver(machine, tmp_path, fast_link)
    restarted.restore_state(batch.state)
    with restarted:
        assert vends(restarted.read(READ_S)) == [1]


def test_test_vends_do_not_count_and_paid_vends_do(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings
) -> None:
    with make_driver(machine, tmp_path, fast_link) as driver:
        driver.commit(driver.read(READ_S))
        machine.test_vend("3")
        machine.vend("3", free=False)
        assert vends(driver.read(READ_S)) == [3]


def test_counter_reset_emits_nothing_then_counts_again(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    machine.vend("1", count=6)
    with make_driver(machine, tmp_path, fast_link) as driver:
        driver.commit(driver.read(READ_S))
        machine.reset_counters()
        with caplog.at_level(logging.WARNING):
            batch = driver.read(READ_S)
        assert vends(batch) == []
        assert "treated as a reset" in caplog.text
        assert driver.counters()["dex_resets"] == 1
        driver.commit(batch)
        machine.vend("1")
        assert vends(driver.read(READ_S)) == [1]


def test_door_and_temperature(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings
) -> None:
    with make_driver(machine, tmp_path, fast_link) as driver:
        driver.commit(driver.read(READ_S))
        machine.open_door()
        machine.set_temperature(31.5)
        batch = driver.read(READ_S)
        assert of_type(batch, Door) == [Door(DoorState.OPEN)]
        assert of_type(batch, Temperature) == [Temperature(31.5)]
        driver.commit(batch)
        machine.close_door()
        machine.record_event("EJJ")
        batch = driver.read(READ_S)
        assert of_type(batch, Door) == [Door(DoorState.CLOSED)]
        assert of_type(batch, Fault) == [Fault("DEX_EJJ")]
        driver.commit(batch)
        assert of_type(driver.read(READ_S), Door) == []


def test_garbled_exchange_raises_driver_error_and_is_retried(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings
) -> None:
    with make_driver(machine, tmp_path, fast_link) as driver:
        driver.commit(driver.read(READ_S))
        machine.vend("2")
        machine.garble_next_sessions(1)
        with pytest.raises(DriverError, match="DEX read failed"):
            driver.read(READ_S)
        assert driver.counters()["dex_failures"] == 1
        assert vends(driver.read(READ_S)) == [2]


def test_not_due_yet_returns_an_empty_batch_without_a_session(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings
) -> None:
    driver = DexDriver(machine.port, data_dir=tmp_path, poll_s=3600.0, timings=fast_link)
    with driver:
        driver.commit(driver.read(READ_S))
        served = machine.audits_served
        machine.vend("1")
        assert driver.read(READ_S).observations == []
        assert machine.audits_served == served


def test_missing_port_is_a_driver_error(tmp_path: Path) -> None:
    driver = DexDriver(str(tmp_path / "no-such-tty"), data_dir=tmp_path)
    with pytest.raises(DriverError, match="cannot open"):
        driver.open()


def test_corrupt_baseline_file_is_ignored_with_a_warning(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / FILE_NAME).write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING), make_driver(machine, tmp_path, fast_link) as driver:
        assert vends(driver.read(READ_S)) == []
    assert "ignoring DEX baseline" in caplog.text


def test_a_noisy_byte_in_the_audit_costs_nothing(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings
) -> None:
    with make_driver(machine, tmp_path, fast_link) as driver:
        driver.commit(driver.read(READ_S))
        machine.vend("1", count=2)
        # The code shifts the fields: EA1 and EA2 then carry "²" (0xB2 on the wire,
        # read as Latin-1) where a date and a count belong.
        machine.record_event("EJJ*\u00b2")
        batch = driver.read(READ_S)
        assert vends(batch) == [1, 1]
        assert [o.code for o in of_type(batch, Fault)] == ["DEX_EJJ"]


def test_a_selection_id_in_noisy_digits_maps_to_no_slot(
    tmp_path: Path, fast_link: LinkTimings
) -> None:
    vm = VirtualDexMachine({"1": ("NALOXONE", 0), "\u00b2": ("NOISE", 0)}, response_s=1.5)
    with vm, make_driver(vm, tmp_path, fast_link) as driver:
        driver.commit(driver.read(READ_S))
        vm.vend("1")
        vm.vend("\u00b2")
        batch = driver.read(READ_S)
        assert vends(batch) == [1]
        assert driver.counters()["dex_unmapped_vends"] == 1


def test_an_audit_the_parser_cannot_handle_is_a_driver_error_and_keeps_the_baseline(
    machine: VirtualDexMachine, tmp_path: Path, fast_link: LinkTimings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parser_bug(data: bytes | str) -> Audit:
        raise ValueError("invalid literal for int() with base 10: 'x'")

    with make_driver(machine, tmp_path, fast_link) as driver:
        driver.commit(driver.read(READ_S))
        machine.vend("2")
        with monkeypatch.context() as patch:
            # Fault injection: stands for any parser bug still hidden on outside input.
            patch.setattr("firmware_agent.drivers.dex.parse_audit", parser_bug)
            with pytest.raises(DriverError, match="DEX audit unreadable: invalid literal"):
                driver.read(READ_S)
        assert driver.counters()["dex_bad_audits"] == 1
        assert vends(driver.read(READ_S)) == [2]
