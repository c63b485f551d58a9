"""A controller reboot: new boot counter, numbering from 0, nothing lost or doubled."""

from __future__ import annotations

from pathlib import Path

from firmware_agent.agent import Agent
from firmware_agent.nxlink.link import LinkTiming
from simulators.broker import MosquittoBroker
from simulators.virtual_controller import VirtualController
from tests.agent.helpers import Collector, agent_settings, wait_until

FAST_LINK = LinkTiming(ack_timeout_s=0.3, link_down_retry_s=0.3)


def test_reboot_resets_numbering_without_losing_or_doubling(
    mosquitto: MosquittoBroker, tmp_path: Path,
) -> None:
    collector = Collector(mosquitto)
    vc = VirtualController({1: ("naloxone-nasal-4mg", 100, 100)}, timing=FAST_LINK).start()
    settings = agent_settings(mosquitto, tmp_path, vc.port)
    agent = Agent(settings)
    agent.start()
    try:
        for _ in range(40):
            vc.vend(1)
        wait_until(lambda: vc.unacked == 0, what="first vends stored")
        vc.reboot()
        # Frames 1..40 of the new boot reuse numbers the agent has handled:
        # only the barrier HELLO keeps them from being taken for duplicates.
        for _ in range(40):
            vc.vend(1)
        wait_until(lambda: vc.unacked == 0, what="vends after the reboot stored")
        assert agent.driver.counters()["peer_restarts"] == 1
        agent.stop()

        # Agent away; the controller vends and reboots before it returns.
        for _ in range(5):
            vc.vend(1)
        vc.reboot()
        agent = Agent(settings)
        agent.start()
        wait_until(lambda: vc.unacked == 0, what="vends kept across the reboot stored")
        wait_until(lambda: len(set(collector.event_ids("vend"))) >= 85, what="85 vends")
    finally:
        agent.stop()
        vc.stop()
        collector.close()
    vends = {e["event_id"]: e for e in collector.on("events") if e["kind"] == "vend"}
    assert len(vends) == 85 == vc.vends_made


def test_events_resent_after_a_reboot_under_new_numbers_are_counted_once(
    mosquitto: MosquittoBroker, tmp_path: Path,
) -> None:
    collector = Collector(mosquitto)
    vc = VirtualController({1: ("naloxone-nasal-4mg", 100, 100)}, timing=FAST_LINK).start()
    settings = agent_settings(mosquitto, tmp_path, vc.port)
    agent = Agent(settings)
    agent.start()
    try:
        wait_until(lambda: vc.unacked == 0, what="the HELLOs acknowledged")
        vc.ack_loss_rate = 1.0  # every ACK garbled on its way to the controller
        for _ in range(5):
            vc.vend(1)
        wait_until(lambda: len(set(collector.event_ids("vend"))) >= 5, what="5 vends stored")
        assert vc.unacked == 5
        # The agent restarts too: what it remembers must be on disk, not in memory.
        agent.stop()
        agent = Agent(settings)
        agent.start()
        vc.ack_loss_rate = 0.0
        vc.reboot()  # the five come again after the HELLO, with new sequence numbers
        wait_until(lambda: vc.unacked == 0, what="the resent vends acknowledged")
        vc.vend(1)  # a marker: once it is through, everything before it is too
        wait_until(lambda: len(set(collector.event_ids("vend"))) >= 6, what="the sixth vend")
        repeated = agent.driver.counters().get("repeated_events")
    finally:
        agent.stop()
        vc.stop()
        collector.close()
    assert len(set(collector.event_ids("vend"))) == 6 == vc.vends_made
    assert repeated == 5
