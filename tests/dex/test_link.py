"""The UCS master against the virtual DEX machine on a real pty, opened with pyserial."""

from __future__ import annotations

import os
import tty
from collections.abc import Iterator

import pytest
import serial

from firmware_agent.dex.link import DexLinkError, LinkTimings, UcsMaster
from firmware_agent.dex.parser import parse_audit
from simulators.virtual_dex import VirtualDexMachine


@pytest.fixture
def port(machine: VirtualDexMachine) -> Iterator[serial.Serial]:
    handle = serial.serial_for_url(machine.port, baudrate=9600, timeout=0.05)
    try:
        yield handle
    finally:
        handle.close()


def test_read_audit_returns_the_machines_counters(
    machine: VirtualDexMachine, port: serial.Serial, fast_link: LinkTimings
) -> None:
    machine.vend("1", count=3)
    machine.vend("3", free=False)
    machine.test_vend("2")
    master = UcsMaster(port, timings=fast_link)
    audit = parse_audit(master.read_audit())
    assert audit.complete
    assert audit.crc_ok is True
    assert audit.selection("1").free_vends == 3
    assert audit.selection("3").vends == 1
    assert audit.selection("2").test_vends == 1
    assert master.machine is not None
    assert master.machine.comm_id == machine.comm_id
    assert machine.audits_served == 1


def test_multi_block_audit(fast_link: LinkTimings) -> None:
    selections = {str(n): (f"PRODUCT {n}", 0) for n in range(1, 80)}
    with VirtualDexMachine(selections, response_s=1.5) as vm:
        vm.vend("79", count=2)
        text = vm.audit_text().encode()
        assert len(text) > 10 * 245  # many data blocks
        with serial.serial_for_url(vm.port, baudrate=9600, timeout=0.05) as handle:
            raw = UcsMaster(handle, timings=fast_link).read_audit()
    assert raw.replace(b"\r\n", b"\n").split(b"\n")[0] == text.split(b"\r\n")[0]
    assert parse_audit(raw).selection("79").free_vends == 2


def test_corrupt_blocks_are_refused_and_sent_again(
    machine: VirtualDexMachine, port: serial.Serial, fast_link: LinkTimings
) -> None:
    machine.vend("2", count=4)
    machine.corrupt_next_blocks(2)
    master = UcsMaster(port, timings=fast_link)
    audit = parse_audit(master.read_audit())
    assert audit.selection("2").free_vends == 4
    assert master.stats.naks_sent == 2
    assert machine.naks_received == 2


def test_garbled_session_fails_cleanly_and_the_next_read_works(
    machine: VirtualDexMachine, port: serial.Serial, fast_link: LinkTimings
) -> None:
    machine.vend("1")
    machine.garble_next_sessions(1)
    master = UcsMaster(port, timings=fast_link)
    with pytest.raises(DexLinkError):
        master.read_audit()
    assert master.stats.failures == 1
    audit = parse_audit(master.read_audit())
    assert audit.selection("1").free_vends == 1
    assert machine.sessions_garbled == 1


def test_silent_port_times_out() -> None:
    master_fd, slave_fd = os.openpty()
    tty.setraw(slave_fd)
    try:
        with serial.serial_for_url(os.ttyname(slave_fd), timeout=0.05) as handle:
            timings = LinkTimings(response_s=0.2, session_s=5.0, enq_tries=2)
            with pytest.raises(DexLinkError, match="did not answer ENQ"):
                UcsMaster(handle, timings=timings).read_audit()
        assert os.read(master_fd, 16) == b"\x05\x05"  # it asked twice, then gave up
    finally:
        os.close(master_fd)
        os.close(slave_fd)


def test_line_noise_between_tokens_is_skipped(fast_link: LinkTimings) -> None:
    with VirtualDexMachine({"1": ("NALOXONE", 0)}, response_s=1.5, noise_rate=0.5, seed=7) as vm:
        vm.vend("1", count=9)
        with serial.serial_for_url(vm.port, baudrate=9600, timeout=0.05) as handle:
            master = UcsMaster(handle, timings=fast_link)
            for _ in range(3):
                assert parse_audit(master.read_audit()).selection("1").free_vends == 9
    assert master.stats.noise_bytes > 0
    assert master.stats.failures == 0


def test_enq_during_data_gets_the_last_acknowledgement_again(
    machine: VirtualDexMachine, port: serial.Serial, fast_link: LinkTimings
) -> None:
    machine.vend("1", count=2)
    machine.ask_again_after_next_blocks(2)
    audit = parse_audit(UcsMaster(port, timings=fast_link).read_audit())
    assert audit.selection("1").free_vends == 2
    assert machine.acks_repeated == 2
