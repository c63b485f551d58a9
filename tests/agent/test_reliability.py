"""Nothing lost, nothing doubled: kill -9 the agent, stop the broker, garble the line.

Verified with a persistent MQTT v5 subscriber as the backend user that keeps
every event id; MQTT may deliver a message twice (at-least-once), so what
counts is the set of distinct ``(boot_id, seq)`` ids and that it matches,
one for one, the vends the virtual controller really made.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_agent.agent import Agent
from firmware_agent.nxlink.link import LinkTiming
from simulators.broker import MosquittoBroker
from simulators.virtual_controller import VirtualController
from tests.agent.helpers import AgentProcess, Collector, agent_settings, wait_until, write_config

BURST = 1000
KILL_AT = (200, 350, 500, 650, 800)
"""Vends the controller has made each time the agent is killed."""
PACE_QUEUE = 64
"""Unacknowledged controller frames the burst lets pile up before it waits."""
OUTAGE_S = 30.0
"""How long the broker stays down; the issue's figure."""
OUTAGE_ROUNDS = 30
MAX_INFLIGHT = 20
"""Small, so that the outage backlog (300+ rows) must be paced by PUBACKs."""
OUTAGE_ROUND_VENDS = 10
NOISY_VENDS = 400
DRAIN_S = 90.0
"""Deadline for a whole backlog to arrive; generous for a loaded 2-core machine."""
LINK = LinkTiming(ack_timeout_s=0.3, link_down_retry_s=0.3)
SLOTS = {n: (f"product-{n}", 2500, 2500) for n in range(1, 5)}


@pytest.fixture
def collector(mosquitto: MosquittoBroker) -> Iterator[Collector]:
    c = Collector(mosquitto)
    yield c
    c.close()


def distinct_vends(collector: Collector) -> dict[str, dict[str, object]]:
    """Return the vend events received, one per event id."""
    return {e["event_id"]: e for e in collector.on("events") if e["kind"] == "vend"}


def assert_exactly_the_controllers_vends(collector: Collector, vc: VirtualController) -> None:
    """Every vend the controller made arrived once (by id) and nothing else was invented."""
    events = collector.on("events")
    assert {e["kind"] for e in events} == {"vend"}
    vends = distinct_vends(collector)
    assert len(vends) == len(vc.vend_results)
    assert len({(e["boot_id"], e["seq"]) for e in vends.values()}) == len(vends)
    assert Counter((e["slot"], e["result"]) for e in vends.values()) == Counter(
        (slot, result.value) for slot, result in vc.vend_results
    )
    assert sum(e["result"] == "ok" for e in vends.values()) == vc.vends_made


# --- kill -9 ----------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_mid_burst_loses_and_doubles_nothing(
    mosquitto: MosquittoBroker, collector: Collector, tmp_path: Path,
) -> None:
    with VirtualController(SLOTS, timing=LINK, jam_rate=0.02, seed=7) as vc:
        config = write_config(tmp_path / "agent.toml", mosquitto, tmp_path / "data", vc.port)
        log_path = tmp_path / "agent.log"
        agent = AgentProcess(config, log_path)
        try:
            made = 0
            for stop_at in (*KILL_AT, BURST):
                while made < stop_at:
                    vc.vend(made % 4 + 1)
                    made += 1
                    # Pace like a busy machine: a few windows queued at most.
                    wait_until(lambda: vc.unacked < PACE_QUEUE, what="controller queue room")
                if stop_at < BURST:
                    # Mid-burst: frames in the window, rows in the outbox, no warning.
                    agent.kill()
                    agent = AgentProcess(config, log_path)
            wait_until(lambda: len(distinct_vends(collector)) >= BURST, timeout=DRAIN_S,
                       what="every vend after the restarts")
            wait_until(lambda: vc.unacked == 0, what="controller queue acknowledged")
        finally:
            code = agent.terminate()
    assert code == 0
    assert_exactly_the_controllers_vends(collector, vc)
    assert len(distinct_vends(collector)) == BURST
    boots = {int(str(e["boot_id"])) for e in distinct_vends(collector).values()}
    # Each restarted agent carried on the burst, one boot id after the other.
    assert len(boots) == len(KILL_AT) + 1
    assert max(boots) - min(boots) == len(KILL_AT)
    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log
    assert " ERROR " not in log


# --- broker outage --------------------------------------------------------------------------


@pytest.mark.slow
def test_broker_outage_mid_burst_loses_and_doubles_nothing(
    mosquitto: MosquittoBroker, collector: Collector, tmp_path: Path,
) -> None:
    vc = VirtualController(SLOTS, timing=LINK, seed=11).start()
    agent = Agent(agent_settings(mosquitto, tmp_path, vc.port, max_inflight=MAX_INFLIGHT))
    agent.start()
    most_inflight = 0
    try:
        for n in range(200):
            vc.vend(n % 4 + 1)
        wait_until(lambda: len(distinct_vends(collector)) >= 100, what="vends before the outage")
        mosquitto.stop()
        # The machine keeps vending through the outage, a round per second or so;
        # each round is on disk (ACKed to the controller) before the next.
        held = threading.Event()
        end = time.monotonic() + OUTAGE_S
        during = 0
        while time.monotonic() < end:
            round_end = time.monotonic() + OUTAGE_S / OUTAGE_ROUNDS
            for n in range(OUTAGE_ROUND_VENDS):
                vc.vend(n % 4 + 1)
            during += OUTAGE_ROUND_VENDS
            wait_until(lambda: vc.unacked == 0, what="vends stored during the outage")
            held.wait(max(0.0, round_end - time.monotonic()))  # the outage lasts, on purpose
        assert agent.outbox_depth >= during  # all of it waits on disk
        mosquitto.start()
        # New vends keep coming while the backlog drains.
        for n in range(50):
            vc.vend(n % 4 + 1)

        def drained() -> bool:
            nonlocal most_inflight
            most_inflight = max(most_inflight, agent.pump.inflight)
            return len(distinct_vends(collector)) >= len(vc.vend_results)

        wait_until(drained, timeout=DRAIN_S, what="the backlog after the outage")
        wait_until(lambda: agent.outbox_depth == 0, what="outbox drained")
    finally:
        agent.stop()
        vc.stop()
    assert_exactly_the_controllers_vends(collector, vc)
    assert 0 < most_inflight <= MAX_INFLIGHT  # the backlog went out paced by PUBACKs


# --- a noisy line ---------------------------------------------------------------------------


def test_noisy_line_counts_every_vend_exactly_once(
    mosquitto: MosquittoBroker, collector: Collector, tmp_path: Path,
) -> None:
    vc = VirtualController(SLOTS, timing=LINK, seed=3, noise_rate=0.2, drop_rate=0.002,
                           duplicate_rate=0.1, ack_loss_rate=0.1, jam_rate=0.05).start()
    agent = Agent(agent_settings(mosquitto, tmp_path, vc.port))
    agent.start()
    try:
        for n in range(NOISY_VENDS):
            vc.vend(n % 4 + 1)
        wait_until(lambda: vc.unacked == 0, timeout=DRAIN_S, what="every vend acknowledged")
        wait_until(lambda: len(distinct_vends(collector)) >= NOISY_VENDS, timeout=DRAIN_S,
                   what="every vend published")
        counters = agent.driver.counters()
    finally:
        agent.stop()
        vc.stop()
    assert_exactly_the_controllers_vends(collector, vc)
    # The line really was bad, and the link absorbed it.
    assert counters["bad_frames"] > 0
    assert counters["noise_bytes"] > 0
    assert counters["duplicates"] > 0
    assert vc.counters()["retransmits"] > 0
