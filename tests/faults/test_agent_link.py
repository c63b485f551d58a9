"""Faults between the agent and the broker: 1,000 vends through each, stored exactly once.

Real processes: a virtual controller on a pty, ``nx-agent run``, Mosquitto,
``nx-backend ingest`` and SQLite; the fault proxy sits between the agent and
the broker (tests/faults/rig.py). One rig serves every fault, in order; each
fault checks the whole ledger so far.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faultproxy import Direction
from tests.faults import scenarios
from tests.faults.rig import Rig, build_rig, save_figures

pytestmark = pytest.mark.slow

FIGURES: dict[str, object] = {}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with build_rig(tmp_path_factory.mktemp("agent-link")) as r:
        r.vend(20)
        r.wait_stored()
        yield r
    save_figures("test_agent_link", FIGURES)


def test_black_hole_partition(rig: Rig) -> None:
    FIGURES["blackhole"] = scenarios.blackhole(rig, rig.agent_link)


def test_resets_mid_burst(rig: Rig) -> None:
    FIGURES["reset"] = scenarios.resets(rig, rig.agent_link)


def test_two_second_latency(rig: Rig) -> None:
    FIGURES["latency"] = scenarios.latency(rig, rig.agent_link)


def test_half_open_pubacks_never_come_back(rig: Rig) -> None:
    # The broker gets every PUBLISH; its PUBACKs (and PINGRESPs) stall on the way back.
    FIGURES["half_open"] = scenarios.half_open(rig, rig.agent_link, Direction.TO_CLIENT)
