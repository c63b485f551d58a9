"""``nx-agent conformance`` against the virtual controller on a pty, and against a broken one."""

from __future__ import annotations

import json
from typing import Any

from firmware_agent.drivers.base import Observation
from firmware_agent.nxlink.link import LinkTiming
from firmware_agent.nxlink.messages import MESSAGE_TYPES, message_fields
from firmware_agent.wire.frames import Frame
from simulators.virtual_controller import VirtualController
from tests.agent.helpers import run_agent_cli

SLOTS = {1: ("naloxone-nasal-4mg", 8, 10), 2: ("fentanyl-test-strip", 30, 40)}
RULES = {"hello-acked", "hello-answered", "protocol-2", "ack-ping", "ack-unknown-type",
         "ack-invalid", "drop-damaged", "inv-stock", "duplicate-acked-once", "retransmit",
         "ack-commands", "peer-restart", "clean-frames", "numbering", "event-ids"}


class BrokenController(VirtualController):
    """A controller that gets four rules wrong, each the way a real firmware might."""

    def __init__(self) -> None:
        # Two sends per round and a short pause: gives up on a frame too early.
        super().__init__(SLOTS, timing=LinkTiming(max_tries=2, link_down_retry_s=0.5))
        self._invs: set[int] = set()

    def _submit(self, message: Observation) -> None:
        # Announces protocol 2 in its HELLO but never adds event ids.
        kind, fields = message_fields(message)
        self._link.submit(kind, fields, persistent=True)
        self._wake()

    def _on_frame(self, frame: Frame) -> list[bytes]:
        if frame.type not in MESSAGE_TYPES:
            return []  # no ACK for a type it does not know
        repeated = frame.type == "INV" and frame.seq in self._invs
        if frame.type == "INV":
            self._invs.add(frame.seq)
        acks = super()._on_frame(frame)
        if repeated:
            self._send_stock()  # acts on a duplicate
        return acks


def conformance(port: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """Run ``nx-agent conformance --json`` on ``port``; return its exit code and rules by name."""
    out = run_agent_cli("conformance", "--port", port, "--json")
    assert "Traceback" not in out.stderr
    return out.returncode, {r["rule"]: r for r in json.loads(out.stdout)}


def test_the_virtual_controller_passes_every_rule() -> None:
    with VirtualController(SLOTS) as vc:
        code, rules = conformance(vc.port)
    assert set(rules) == RULES
    assert [name for name, r in rules.items() if not r["passed"]] == []
    assert code == 0
    text = run_agent_cli("conformance", "--port", "/dev/nx-no-such-port")
    assert text.returncode == 2
    assert "cannot open /dev/nx-no-such-port" in text.stderr


def test_a_broken_controller_fails_exactly_the_rules_it_breaks() -> None:
    with BrokenController() as vc:
        code, rules = conformance(vc.port)
    failed = {name for name, r in rules.items() if not r["passed"]}
    assert failed == {"ack-unknown-type", "duplicate-acked-once", "retransmit", "event-ids"}
    assert "acted on again" in rules["duplicate-acked-once"]["detail"]
    assert "has no event id" in rules["event-ids"]["detail"]
    assert code == 1
