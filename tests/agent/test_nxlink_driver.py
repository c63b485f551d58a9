"""The nxlink driver on a real pty: the crash windows around "durable, then ACK"."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from firmware_agent.drivers.base import Batch, Vend
from firmware_agent.drivers.nxlink import NxlinkDriver
from firmware_agent.nxlink.link import LinkTiming
from simulators.virtual_controller import VirtualController

LINK = LinkTiming(ack_timeout_s=0.2, link_down_retry_s=0.2)
READ_S = 0.1
DEADLINE_S = 20.0


@pytest.fixture
def vc() -> Iterator[VirtualController]:
    with VirtualController({1: ("naloxone-nasal-4mg", 10, 10)}, timing=LINK) as controller:
        yield controller


def read_vends(driver: NxlinkDriver, want: int, *, commit: bool) -> tuple[list[Vend], Batch]:
    """Read until ``want`` vends were observed (or the deadline); return them and the last batch."""
    vends: list[Vend] = []
    last = Batch()
    deadline = time.monotonic() + DEADLINE_S
    while len(vends) < want and time.monotonic() < deadline:
        batch = driver.read(READ_S)
        vends += [o for o in batch.observations if isinstance(o, Vend)]
        if batch.token:
            last = batch
            if commit:
                driver.commit(batch)
    return vends, last


def drain(driver: NxlinkDriver, vc: VirtualController) -> list[Vend]:
    """Read and commit until the controller has nothing unacknowledged; return new vends."""
    vends: list[Vend] = []
    deadline = time.monotonic() + DEADLINE_S
    while vc.unacked and time.monotonic() < deadline:
        batch = driver.read(READ_S)
        vends += [o for o in batch.observations if isinstance(o, Vend)]
        driver.commit(batch)
    assert vc.unacked == 0
    return vends


def test_crash_after_storing_before_acking_does_not_double_count(vc: VirtualController) -> None:
    first = NxlinkDriver(vc.port, timing=LINK, boot_id=1)
    first.open()
    assert drain(first, vc) == []  # the HELLOs
    vc.vend(1)
    vends, stored = read_vends(first, 1, commit=False)
    assert len(vends) == 1
    first.close()  # the crash: the batch (with its state) is on disk, the ACK never left

    second = NxlinkDriver(vc.port, timing=LINK, boot_id=2)
    second.restore_state(stored.state)
    second.open()
    assert drain(second, vc) == []  # the retransmitted VEND is a duplicate
    assert second.counters()["duplicates"] >= 1
    second.close()


def test_crash_before_storing_gets_the_vend_again(vc: VirtualController) -> None:
    first = NxlinkDriver(vc.port, timing=LINK, boot_id=1)
    first.open()
    assert drain(first, vc) == []
    vc.vend(1)
    vends, _ = read_vends(first, 1, commit=False)
    assert len(vends) == 1
    state_before = first._link.rx_state()  # what the store last held: not this batch
    first.close()

    second = NxlinkDriver(vc.port, timing=LINK, boot_id=2)
    second.restore_state(state_before)
    second.open()
    again = drain(second, vc)
    assert [(v.slot, v.result.value) for v in again] == [(1, "ok")]
    second.close()
