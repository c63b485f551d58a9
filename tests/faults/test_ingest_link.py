"""Faults between ingest and the broker: 1,000 vends through each, stored exactly once.

Real processes: a virtual controller on a pty, ``nx-agent run``, Mosquitto,
``nx-backend ingest`` and SQLite; the fault proxy sits between the broker and
the ingest worker (tests/faults/rig.py). One rig serves every fault, in order; each
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
    with build_rig(tmp_path_factory.mktemp("ingest-link")) as r:
        r.vend(20)
        r.wait_stored()
        yield r
    save_figures("test_ingest_link", FIGURES)


def test_black_hole_partition(rig: Rig) -> None:
    FIGURES["blackhole"] = scenarios.blackhole(rig, rig.ingest_link)


def test_resets_mid_burst(rig: Rig) -> None:
    FIGURES["reset"] = scenarios.ingest_resets(rig)


def test_two_second_latency(rig: Rig) -> None:
    FIGURES["latency"] = scenarios.latency(rig, rig.ingest_link)


def test_half_open_acks_never_reach_the_broker(rig: Rig) -> None:
    # Ingest gets and commits messages; its PUBACKs (and PINGREQs) stall on the way out,
    # so the broker sends them all again on the next connection.
    FIGURES["half_open"] = scenarios.half_open(rig, rig.ingest_link, Direction.TO_SERVER)
