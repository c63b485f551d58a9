"""Random runs of vends, lost batches and restarts: committed vends equal vends made."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from firmware_agent.dex.link import LinkTimings
from firmware_agent.drivers.base import DriverError, Vend
from firmware_agent.drivers.dex import DexDriver
from simulators.virtual_dex import VirtualDexMachine

STEPS = 25
READ_S = 0.05
SELECTIONS = {"1": ("NALOXONE NASAL", 0), "2": ("NALOXONE IM", 0), "4": ("STRIPS", 100)}
# Short: a timeout here is only one more failed read, which the scenario tolerates anyway.
QUICK_S = 0.5
QUICK_LINK = LinkTimings(response_s=QUICK_S, session_s=10.0, enq_tries=2, nak_limit=5)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_run_reports_each_vend_exactly_once(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    made: Counter[int] = Counter()
    reported: Counter[int] = Counter()
    with VirtualDexMachine(SELECTIONS, response_s=QUICK_S, seed=seed) as vm:

        def new_driver() -> DexDriver:
            driver = DexDriver(vm.port, data_dir=tmp_path, poll_s=0.0, timings=QUICK_LINK,
                               retry_s=0.0)
            driver.open()
            return driver

        driver = new_driver()
        driver.commit(driver.read(READ_S))  # the first audit sets the baseline
        for _ in range(STEPS):
            action = rng.choice(["vend", "vend", "paid", "test", "lose", "restart", "garble"])
            if action == "vend":
                selection = rng.choice(["1", "2"])
                count = rng.randint(1, 4)
                vm.vend(selection, count=count)
                made[int(selection)] += count
            elif action == "paid":
                vm.vend("4", free=False)
                made[4] += 1
            elif action == "test":
                vm.test_vend(rng.choice(list(SELECTIONS)))
            elif action == "restart":
                driver.close()
                driver = new_driver()
            elif action == "garble":
                vm.garble_next_sessions(1)
            try:
                batch = driver.read(READ_S)
            except DriverError:
                continue  # the agent would retry later; the next step reads again
            if action == "lose":
                continue  # the agent could not store it: no commit, it comes again
            reported.update(o.slot for o in batch.observations if isinstance(o, Vend))
            driver.commit(batch)
        batch = driver.read(READ_S)
        reported.update(o.slot for o in batch.observations if isinstance(o, Vend))
        driver.commit(batch)
        driver.close()
    assert reported == made
