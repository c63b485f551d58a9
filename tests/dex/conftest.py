"""Fixtures for the DEX tests: a virtual DEX machine on a pty and fast link timings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from firmware_agent.dex.link import LinkTimings
from simulators.virtual_dex import VirtualDexMachine

# Shrunk from the production defaults, still generous for a loaded 2-core machine.
FAST_LINK = LinkTimings(response_s=1.5, session_s=30.0, enq_tries=3, nak_limit=5)
MACHINE_RESPONSE_S = 1.5


@pytest.fixture
def fast_link() -> LinkTimings:
    return FAST_LINK


@pytest.fixture
def machine() -> Iterator[VirtualDexMachine]:
    """A started virtual DEX machine with two free naloxone selections and one paid one."""
    vm = VirtualDexMachine(
        {"1": ("NALOXONE NASAL 4MG", 0), "2": ("NALOXONE IM 0.4MG", 0), "3": ("TEST KIT", 150)},
        response_s=MACHINE_RESPONSE_S,
    )
    vm.start()
    try:
        yield vm
    finally:
        vm.stop()
