"""Stock accounting: the pure rules, and any interleaving through the batch writer."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select
from sqlmodel import Session

from backend import stock
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import (
    DispenseEvent,
    Machine,
    MachineEvent,
    Slot,
    StockDiscrepancy,
    utcnow,
)
from backend.models import StockSnapshot as SnapshotRow
from backend.stock import StockSource
from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel, machine_topic
from tests.backend.conftest import register
from tests.backend.helpers import T0, events_topic, fresh, restock_event, vend

# -- pure rules ------------------------------------------------------------------------

Op = tuple[str, int]
ops = st.lists(
    st.one_of(
        st.just(("vend", 0)),
        st.tuples(st.just("restock"), st.integers(0, 30)),
        st.tuples(st.sampled_from(["controller", "dex", "visit"]), st.integers(0, 30)),
    ),
    max_size=60,
)


def _apply(count: int, op: Op) -> stock.Change:
    kind, value = op
    if kind == "vend":
        return stock.vend(count)
    if kind == "restock":
        return stock.restock(count, value)
    return stock.reconcile(count, value, StockSource(kind))


@given(start=st.integers(0, 30), sequence=ops)
def test_any_sequence_keeps_stock_non_negative_and_explained(start: int, sequence: list[Op]
                                                             ) -> None:
    count = start
    for op in sequence:
        change = _apply(count, op)
        assert change.before == count
        assert change.after >= 0
        kind, value = op
        delta = change.after - change.before
        found = change.discrepancy
        if kind == "vend":
            # One item out, or (from an empty slot) nothing out and the miss recorded.
            assert (delta, found) == (-1, None) or (
                count == 0 and delta == 0 and found is not None and found.expected == -1)
        elif kind == "restock":
            assert (change.after, found) == (value, None)
        else:
            assert change.after == value
            # Never silently overwritten: any difference carries both numbers.
            assert (found is None) == (value == count)
            if found is not None:
                assert (found.expected, found.observed) == (count, value)
        count = change.after


def test_restock_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="negative"):
        stock.restock(3, -1)


def test_already_counted_compares_device_times() -> None:
    assert not stock.already_counted(T0, None)
    assert stock.already_counted(T0, T0)
    assert not stock.already_counted(T0 + timedelta(seconds=1), T0)


# -- the same through the batch writer --------------------------------------------------


@dataclass
class Model:
    """What the books should say after events applied in device-time order, once each."""

    count: int
    discrepancies: int = 0

    def apply(self, change: stock.Change) -> None:
        self.count = change.after
        self.discrepancies += change.discrepancy is not None


MACHINE = "prop-001"
streams = st.lists(
    st.one_of(
        st.just(("vend", 0)),
        st.tuples(st.just("restock"), st.integers(0, 12)),
        st.tuples(st.just("snapshot"), st.integers(0, 12)),
    ),
    min_size=1,
    max_size=25,
)


def _message(index: int, op: Op) -> Message:
    seq, at = index + 1, T0 + timedelta(seconds=index + 1)
    kind, value = op
    if kind == "vend":
        return Message(events_topic(MACHINE), vend(MACHINE, seq, at=at).to_bytes(), utcnow())
    if kind == "restock":
        body = restock_event(MACHINE, seq, 1, value, at=at).to_bytes()
        return Message(events_topic(MACHINE), body, utcnow())
    snap = payloads.StockSnapshot(machine_id=MACHINE, boot_id=1, revision=seq, device_time=at,
                                  slots=(payloads.SlotStock(slot=1, count=value),))
    return Message(machine_topic(MACHINE, Channel.STOCK), snap.to_bytes(), utcnow())


def _reset(session: Session, start: int) -> None:
    for model in (DispenseEvent, MachineEvent, StockDiscrepancy, SnapshotRow):
        session.execute(delete(model))
    session.commit()
    register(session, MACHINE, count=start, capacity=12)
    machine = session.get(Machine, MACHINE)
    assert machine is not None
    machine.stock_as_of = None
    session.commit()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(0, 12), stream=streams, cuts=st.lists(st.integers(1, 25), max_size=6),
       redeliver=st.lists(st.integers(0, 24), max_size=8))
def test_batches_apply_each_event_once_in_any_batching(
    engine: Engine, session: Session, start: int, stream: list[Op], cuts: list[int],
    redeliver: list[int]
) -> None:
    _reset(session, start)
    messages = [_message(i, op) for i, op in enumerate(stream)]
    model = Model(start)
    for op in stream:
        kind, value = op
        if kind == "snapshot":
            model.apply(stock.reconcile(model.count, value, StockSource.CONTROLLER))
        else:
            model.apply(_apply(model.count, op))
    # Deliver in order, cut into batches anywhere, with redeliveries of earlier messages
    # (what the broker does after a worker dies before acking).
    bounds = sorted({0, len(messages), *(c for c in cuts if c < len(messages))})
    writer = BatchWriter(default_low_threshold=2)
    for lo, hi in itertools.pairwise(bounds):
        batch = messages[lo:hi] + [messages[i] for i in redeliver if i < lo]
        with Session(engine) as writing:
            writer.write(writing, batch, utcnow())
            writing.commit()
    fresh(session)
    slot = session.get(Slot, (MACHINE, 1))
    assert slot is not None
    assert slot.count >= 0
    assert slot.count == model.count
    found = session.execute(select(func.count()).select_from(StockDiscrepancy)).scalar_one()
    assert found == model.discrepancies
