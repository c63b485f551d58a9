"""Ledger and processor: what observations become, and what state is kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from firmware_agent.drivers.base import (
    Door,
    Fault,
    Hello,
    Key,
    Restock,
    StockReport,
    Temperature,
    Vend,
)
from firmware_agent.ledger import Ledger
from firmware_agent.processor import Processor
from firmware_agent.store import Kind
from firmware_agent.wire.payloads import (
    DoorState,
    SlotConfig,
    StockSnapshot,
    VendResult,
    parse_event,
    parse_model,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_ledger_restock_vend_reconcile() -> None:
    ledger = Ledger()
    ledger.configure(1, "naloxone-nasal-4mg", 10)
    ledger.restock(1, 3)
    for _ in range(4):
        ledger.vend(1)
    assert ledger.slots[1].count == 0
    gaps = ledger.reconcile({1: 2, 2: 7})
    # Slot 2 was unknown: learning its count is not a disagreement.
    assert [(g.slot, g.expected, g.reported) for g in gaps] == [(1, 0, 2)]
    assert ledger.slots[2].count == 7
    again = Ledger.from_json(ledger.to_json())
    assert again == ledger
    with pytest.raises(ValueError, match="corrupt ledger"):
        Ledger.from_json('{"slots": {"1": 5}}')


def test_processor_turns_observations_into_events_with_consecutive_seqs() -> None:
    proc = Processor("test-001", boot_id=4, next_seq=10)
    proc.apply_planogram((SlotConfig(slot=1, product="naloxone-nasal-4mg", capacity=10),), NOW)
    out = proc.process(
        [Hello("fw-2", 4, 1), Restock(1, 5), Vend(1, VendResult.OK, True),
         Vend(1, VendResult.JAM), Door(DoorState.OPEN), Fault("MOTOR", 1), Key("12#")],
        NOW,
    )
    events = [parse_event(m.payload) for m in out if m.topic.endswith("/events")]
    assert [e.seq for e in events] == list(range(10, 16))
    assert [e.kind for e in events] == ["restock", "vend", "vend", "door", "fault", "key"]
    assert events[1].event_id == "test-001:4:11"
    assert events[1].product == "naloxone-nasal-4mg"  # type: ignore[union-attr]
    assert [m.kind for m in out if m.topic.endswith("/events")][:3] == [Kind.VITAL] * 3
    snapshot = parse_model(StockSnapshot, out[-1].payload)
    assert out[-1].retain
    assert [(s.slot, s.count) for s in snapshot.slots] == [(1, 4)]  # the jam took nothing
    assert proc.firmware == "fw-2"
    assert json.loads(proc.state()["next_seq"]) == 16


def test_controller_stock_report_reconciles_and_publishes_a_snapshot() -> None:
    proc = Processor("test-001", boot_id=1)
    out = proc.process([StockReport({1: 6})], NOW)
    assert len(out) == 1
    assert out[0].topic.endswith("/stock")
    assert proc.process([StockReport({1: 6})], NOW) == []


def test_temperature_events_only_on_crossing_the_storage_range() -> None:
    proc = Processor("test-001", boot_id=1)
    readings = [20.0, 22.0, 31.0, 35.0, 24.0, 10.0]
    crossings = []
    for celsius in readings:
        for m in proc.process([Temperature(celsius)], NOW):
            event = parse_event(m.payload)
            crossings.append((event.celsius, event.excursion))  # type: ignore[union-attr]
    assert crossings == [(31.0, True), (24.0, False), (10.0, True)]
    assert proc.temperature_c == 10.0


def test_restore_state_undoes_a_batch() -> None:
    proc = Processor("test-001", boot_id=1)
    before = proc.state()
    proc.process([Restock(1, 5)], NOW)
    proc.restore_state(before)
    assert proc.next_seq == 0
    assert proc.ledger.slots == {}


def test_unknown_slots_stay_unknown_until_told() -> None:
    ledger = Ledger()
    ledger.configure(1, "naloxone-nasal-4mg", 10)
    ledger.vend(1)  # a vend before anyone said what the slot holds
    snapshot = ledger.snapshot("test-001", 1, datetime(2026, 11, 24, tzinfo=UTC))
    assert [(x.slot, x.count) for x in snapshot.slots] == [(1, None)]  # not "0": unknown
    assert ledger.reconcile({1: 4}) == []  # first knowledge is not a discrepancy
    ledger.vend(1)
    restored = Ledger.from_json(ledger.to_json())
    counts = {s.slot: s.count for s in restored.snapshot("test-001", 1, datetime.now(UTC)).slots}
    assert counts == {1: 3}
