"""The soak fleet's pacing (tests/benchmarks/_ingest_progress.py), without a broker."""

from __future__ import annotations

import threading
import time

import pytest

from tests.benchmarks._ingest_progress import ProgressGate, finished, parse_counters
from tests.waiting import wait_until

METRICS = """# HELP nx_ingest_messages_committed_total Messages stored
nx_ingest_messages_committed_total 1200.0
nx_ingest_duplicates_total 7.0
nx_ingest_dead_letters_total 3.0
"""


def test_counters_are_read_and_duplicates_are_not_progress() -> None:
    found = parse_counters(METRICS)
    assert found == {"messages_committed": 1200, "duplicates": 7, "dead_letters": 3,
                     "dead_letters_dropped": 0}
    assert finished(found) == 1203


def test_gate_holds_the_fleet_at_the_bound_until_the_worker_catches_up() -> None:
    gate = ProgressGate(lambda: None, ahead=3, timeout=30)
    for _ in range(3):
        gate.admit()
    admitted = threading.Event()

    def fourth() -> None:
        gate.admit()
        admitted.set()

    thread = threading.Thread(target=fourth, daemon=True)
    thread.start()
    wait_until(lambda: gate.waits == 1, timeout=10, what="the fourth publish held back")
    assert not admitted.is_set()
    gate.record(None)  # metrics that did not answer change nothing
    gate.record(1)
    wait_until(admitted.is_set, timeout=10, what="the fourth publish admitted")
    assert gate.published - gate.finished == 3
    gate.record(0)  # a stale reading never moves progress back
    assert gate.finished == 1
    thread.join(10)


def test_gate_fails_the_run_when_the_worker_is_stuck() -> None:
    gate = ProgressGate(lambda: 0, ahead=1, poll_s=0.01, timeout=0.2).start()
    try:
        gate.admit()
        with pytest.raises(AssertionError, match="ingest stuck at 0 of 1"):
            gate.admit()
    finally:
        gate.stop()


def test_gate_polls_progress_on_its_own() -> None:
    progress = [0]
    gate = ProgressGate(lambda: progress[0], ahead=2, poll_s=0.01, timeout=30).start()
    try:
        gate.admit()
        gate.admit()
        progress[0] = 2
        gate.admit()  # room only once the poller has read the new progress
        assert gate.finished == 2
    finally:
        gate.stop()


def test_gate_makes_a_quiet_spell_after_every_quiet_every_messages() -> None:
    gate = ProgressGate(lambda: None, ahead=100, timeout=30, quiet_every=3, quiet_s=0.3)
    for _ in range(3):
        gate.admit()
    admitted = threading.Event()

    def fourth() -> None:
        gate.admit()
        admitted.set()

    thread = threading.Thread(target=fourth, daemon=True)
    thread.start()
    # Room enough, but the worker has not finished the three: the fleet waits.
    wait_until(lambda: thread.is_alive(), timeout=5, what="the fourth publish started")
    assert not admitted.wait(0.2)
    gate.record(3)
    finished_at = time.monotonic()
    wait_until(admitted.is_set, timeout=10, what="the fourth publish after the quiet spell")
    assert time.monotonic() - finished_at >= 0.3 - 0.01
    assert gate.quiet_spells == 1
    thread.join(10)


def test_publishers_held_back_for_room_do_not_run_past_a_quiet_spell() -> None:
    gate = ProgressGate(lambda: None, ahead=2, timeout=30, quiet_every=4, quiet_s=0.05)
    gate.admit()
    gate.admit()
    done: list[int] = []

    def publisher() -> None:
        gate.admit()
        done.append(gate.published)

    threads = [threading.Thread(target=publisher, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: gate.waits >= 1, timeout=10, what="publishers held back for room")
    gate.record(2)  # room for two: they take the fleet to the mark of 4
    wait_until(lambda: len(done) == 2, timeout=10, what="two publishes")
    assert gate.published == 4
    gate.record(3)  # room again, but the spell is due: nobody passes until all 4 finished
    for thread in threads:
        thread.join(0.05)  # a moment for a publisher that would wrongly go on
    assert (gate.published, len(done)) == (4, 2)
    gate.record(4)
    wait_until(lambda: len(done) == 4, timeout=10, what="the rest after the spell")
    assert gate.quiet_spells == 1
