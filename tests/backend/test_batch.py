"""Batch processing against a real database: idempotency, stock, alerts, dead letters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import (
    Alert,
    CommandResultRecord,
    DeadLetter,
    DispenseEvent,
    Machine,
    MachineEvent,
    Slot,
    StockDiscrepancy,
)
from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel, machine_topic
from tests.backend.conftest import register
from tests.backend.helpers import T0, events_topic, fresh, restock_event, vend

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _write(engine: Engine, messages: list[Message]) -> object:
    with Session(engine, expire_on_commit=False) as session:
        result = BatchWriter(default_low_threshold=2).write(session, messages, NOW)
        session.commit()
        return result


def _msg(topic: str, payload: bytes) -> Message:
    return Message(topic, payload, NOW)


def _event_msg(event: payloads.VendEvent | payloads.RestockEvent) -> Message:
    return _msg(events_topic(event.machine_id), event.to_bytes())


def _count(session: Session, model: type, **where: object) -> int:
    fresh(session)  # end the read snapshot: see what other sessions committed
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return int(session.execute(query).scalar_one())


def _slot(session: Session, machine_id: str, number: int = 1) -> Slot:
    fresh(session)
    slot = session.get(Slot, (machine_id, number))
    assert slot is not None
    return slot


def test_vends_are_stored_once_and_decrement_stock(engine: Engine, session: Session) -> None:
    register(session, "test-001", count=8)
    batch = [_event_msg(vend("test-001", seq)) for seq in range(1, 4)]
    first = _write(engine, batch + batch[:1])  # a duplicate inside the batch
    again = _write(engine, batch)  # the broker redelivers after a crash
    assert (first.stored, first.duplicates) == (3, 1)  # type: ignore[attr-defined]
    assert (again.stored, again.duplicates) == (0, 3)  # type: ignore[attr-defined]
    assert _count(session, DispenseEvent, machine_id="test-001") == 3
    assert _slot(session, "test-001").count == 5
    machine = session.get(Machine, "test-001")
    assert machine is not None
    assert machine.max_seq == 3
    assert machine.last_seen == NOW


def test_low_stock_opens_one_alert_and_restock_resolves_it(
    engine: Engine, session: Session
) -> None:
    register(session, "test-002", count=5, threshold=2)
    # 5 -> 2 reaches the threshold; 2 -> 1 -> 0 must not open more low-stock alerts.
    for seq in range(1, 6):
        _write(engine, [_event_msg(vend("test-002", seq))])
    assert _slot(session, "test-002").count == 0
    low = _count(session, Alert, type="low_stock", subject="test-002/slot/1")
    empty = _count(session, Alert, type="empty_slot", subject="test-002/slot/1", status="open")
    assert (low, empty) == (1, 1)
    _write(engine, [_event_msg(restock_event("test-002", 6, 1, 10))])
    assert _slot(session, "test-002").count == 10
    assert _count(session, Alert, status="open") == 0
    assert _count(session, Alert, status="resolved") == 2


def test_vend_from_empty_slot_keeps_zero_and_records_discrepancy(
    engine: Engine, session: Session
) -> None:
    register(session, "test-003", count=0)
    _write(engine, [_event_msg(vend("test-003", 1))])
    assert _slot(session, "test-003").count == 0
    found = session.execute(select(StockDiscrepancy)).scalars().all()
    assert [(d.source, d.expected, d.observed) for d in found] == [("vend", -1, 0)]


def test_snapshot_reconciles_with_a_recorded_discrepancy(
    engine: Engine, session: Session
) -> None:
    register(session, "test-004", count=8)
    _write(engine, [_event_msg(vend("test-004", 1))])  # books: 7
    snap = payloads.StockSnapshot(
        machine_id="test-004", boot_id=1, revision=5, device_time=T0 + timedelta(seconds=10),
        slots=(payloads.SlotStock(slot=1, product="naloxone-nasal-4mg", count=6, capacity=10),),
    )
    _write(engine, [_msg(machine_topic("test-004", Channel.STOCK), snap.to_bytes())])
    assert _slot(session, "test-004").count == 6
    found = session.execute(select(StockDiscrepancy)).scalars().one()
    assert (found.source, found.expected, found.observed) == ("controller", 7, 6)
    # A vend older than the adopted snapshot is already in it: stored, not counted again.
    _write(engine, [_event_msg(vend("test-004", 2, at=T0 + timedelta(seconds=9)))])
    assert _slot(session, "test-004").count == 6
    assert _count(session, DispenseEvent, machine_id="test-004") == 2


def test_snapshot_slot_of_unknown_count_keeps_the_books(
    engine: Engine, session: Session
) -> None:
    register(session, "test-004", count=8)
    snap = payloads.StockSnapshot(
        machine_id="test-004", boot_id=1, revision=1, device_time=T0 + timedelta(seconds=10),
        slots=(payloads.SlotStock(slot=1, product="naloxone-nasal-4mg", count=None,
                                  capacity=12),),
    )
    _write(engine, [_msg(machine_topic("test-004", Channel.STOCK), snap.to_bytes())])
    slot = _slot(session, "test-004")
    assert (slot.count, slot.capacity) == (8, 12)  # capacity taken, count not zeroed
    assert _count(session, StockDiscrepancy) == 0


def test_bad_messages_become_dead_letters_and_the_rest_is_stored(
    engine: Engine, session: Session
) -> None:
    register(session, "test-005", count=8)
    good = vend("test-005", 1)
    spoofed = vend("test-006", 1)
    batch = [
        _msg(events_topic("test-005"), b"{not json"),
        _msg(events_topic("test-005"), spoofed.to_bytes()),  # payload names another machine
        _msg(events_topic("test-009"), vend("test-009", 1).to_bytes()),  # never registered
        _msg("nx/v1/machines/test-005/bogus", b"{}"),
        _msg(events_topic("test-005"), b'{"firmware":"\\u0000"}'),
        _event_msg(good),
    ]
    result = _write(engine, batch)
    assert result.dead_letters == 5  # type: ignore[attr-defined]
    assert _count(session, DispenseEvent) == 1
    letters = session.execute(select(DeadLetter).order_by(DeadLetter.id)).scalars().all()
    assert {d.payload for d in letters} == {m.payload for m in batch[:5]}
    reasons = " | ".join(d.reason for d in letters)
    assert "unknown machine 'test-009'" in reasons
    assert "does not match the topic" in reasons


def test_status_offline_opens_alert_online_resolves(engine: Engine, session: Session) -> None:
    register(session, "test-007")
    topic = machine_topic("test-007", Channel.STATUS)
    offline = payloads.Status(machine_id="test-007", boot_id=2, state=payloads.MachineState.OFFLINE)
    online = payloads.Status(machine_id="test-007", boot_id=2, state=payloads.MachineState.ONLINE,
                             firmware="1.2.3")
    _write(engine, [_msg(topic, offline.to_bytes())])
    assert _count(session, Alert, type="machine_offline", status="open") == 1
    _write(engine, [_msg(topic, online.to_bytes())])
    fresh(session)
    machine = session.get(Machine, "test-007")
    assert machine is not None
    assert (machine.status, machine.firmware) == ("online", "1.2.3")
    assert _count(session, Alert, type="machine_offline", status="open") == 0


def test_door_and_temperature_events(engine: Engine, session: Session) -> None:
    register(session, "test-008")
    door = payloads.DoorEvent(machine_id="test-008", boot_id=1, seq=1, device_time=T0,
                              state=payloads.DoorState.OPEN)
    hot = payloads.TemperatureEvent(machine_id="test-008", boot_id=1, seq=2, device_time=T0,
                                    celsius=41.5, excursion=True)
    _write(engine, [_msg(events_topic("test-008"), e.to_bytes()) for e in (door, hot)])
    assert _count(session, MachineEvent, machine_id="test-008") == 2
    kinds = set(session.execute(select(Alert.type).where(Alert.status == "open")).scalars())
    assert kinds == {"door_open", "temperature_excursion"}


def test_a_command_answered_twice_keeps_its_first_result(
    engine: Engine, session: Session
) -> None:
    # The agent acks a command only after handling it, so a crash in between
    # means the command comes again and is answered again.
    register(session, "test-009")
    topic = machine_topic("test-009", Channel.CMD_RESULT)
    first = payloads.CommandResult(command_id="c-1", ok=True, detail={"slot": 1}).to_bytes()
    again = payloads.CommandResult(command_id="c-1", ok=False, error="locked").to_bytes()
    other = payloads.CommandResult(command_id="c-2", ok=True).to_bytes()
    _write(engine, [_msg(topic, first), _msg(topic, again)])
    _write(engine, [_msg(topic, again), _msg(topic, other)])
    fresh(session)
    rows = session.exec(select(CommandResultRecord).order_by(CommandResultRecord.command_id)).all()
    assert [(r[0].command_id, r[0].ok, r[0].detail) for r in rows] == [
        ("c-1", True, {"slot": 1}), ("c-2", True, {})]


def test_a_door_event_committed_after_a_newer_one_changes_nothing(
    engine: Engine, session: Session
) -> None:
    # Two workers on the shared subscription: "closed" (seq 11) is committed
    # before "open" (seq 10) that another worker held. The door is closed.
    register(session, "test-010")

    def door(boot_id: int, seq: int, state: payloads.DoorState) -> Message:
        event = payloads.DoorEvent(machine_id="test-010", boot_id=boot_id, seq=seq,
                                   device_time=T0 + timedelta(seconds=seq), state=state)
        return _event_msg(event)  # type: ignore[arg-type]

    def door_alerts() -> int:
        return _count(session, Alert, type="door_open", status="open")

    _write(engine, [door(1, 11, payloads.DoorState.CLOSED)])
    _write(engine, [door(1, 10, payloads.DoorState.OPEN)])
    assert door_alerts() == 0
    fresh(session)
    machine = session.get(Machine, "test-010")
    assert machine is not None
    assert machine.door == "closed"
    assert _count(session, MachineEvent, machine_id="test-010") == 2  # both kept as history
    # After a reboot the seq starts again: a newer boot id wins whatever its seq.
    _write(engine, [door(2, 1, payloads.DoorState.OPEN)])
    assert door_alerts() == 1
    _write(engine, [door(2, 2, payloads.DoorState.CLOSED), door(1, 12, payloads.DoorState.OPEN)])
    assert door_alerts() == 0
    fresh(session)
    machine = session.get(Machine, "test-010")
    assert machine is not None
    assert machine.door == "closed"


def test_a_late_temperature_event_does_not_reopen_an_excursion(
    engine: Engine, session: Session
) -> None:
    register(session, "test-011")

    def reading(seq: int, celsius: float, excursion: bool) -> Message:
        event = payloads.TemperatureEvent(machine_id="test-011", boot_id=1, seq=seq,
                                          device_time=T0 + timedelta(seconds=seq),
                                          celsius=celsius, excursion=excursion)
        return _msg(events_topic("test-011"), event.to_bytes())

    _write(engine, [reading(5, 21.0, False)])
    _write(engine, [reading(4, 41.0, True)])
    assert _count(session, Alert, type="temperature_excursion", status="open") == 0
    fresh(session)
    machine = session.get(Machine, "test-011")
    assert machine is not None
    assert machine.temperature_c == 21.0


def test_a_door_opened_and_shut_within_one_batch_is_still_recorded(
    engine: Engine, session: Session
) -> None:
    # A backlog after an outage brings the opening and the closing together.
    register(session, "test-012")

    def door(seq: int, state: payloads.DoorState) -> Message:
        event = payloads.DoorEvent(machine_id="test-012", boot_id=1, seq=seq,
                                   device_time=T0 + timedelta(minutes=seq), state=state)
        return _msg(events_topic("test-012"), event.to_bytes())

    def door_alerts(status: str) -> int:
        return _count(session, Alert, type="door_open", status=status)

    open_, shut = payloads.DoorState.OPEN, payloads.DoorState.CLOSED
    _write(engine, [door(1, open_), door(2, open_), door(3, shut)])
    assert (door_alerts("open"), door_alerts("resolved")) == (0, 1)
    fresh(session)
    details = session.execute(select(Alert.details).where(Alert.type == "door_open")).scalar_one()
    assert details["since"] == (T0 + timedelta(minutes=1)).isoformat()  # the first opening
    # Open before the batch; in it the door shuts, opens again and shuts: two visits.
    _write(engine, [door(4, open_)])
    assert door_alerts("open") == 1
    _write(engine, [door(5, shut), door(6, open_), door(7, shut)])
    assert (door_alerts("open"), door_alerts("resolved")) == (0, 3)
    # Opened and still open at the end of the batch: one open alert, nothing brief.
    _write(engine, [door(8, open_), door(9, shut), door(10, open_)])
    assert (door_alerts("open"), door_alerts("resolved")) == (1, 4)


def test_stock_that_dips_and_recovers_within_a_batch_raises_no_alert(
    engine: Engine, session: Session
) -> None:
    # Stock alerts keep the batch's last word: a dip that a restock in the same
    # batch undoes is not worth an outreach worker's attention.
    register(session, "test-013", count=3, capacity=10, threshold=2)
    _write(engine, [_event_msg(vend("test-013", 1)), _event_msg(vend("test-013", 2)),
                    _event_msg(restock_event("test-013", 3, 1, 10))])
    assert _count(session, Alert, machine_id="test-013") == 0


def test_a_message_is_dead_lettered_once(engine: Engine, session: Session) -> None:
    # The same junk twice in a batch, then the whole batch again (a redelivery
    # after a crash, or a retry after the database dropped mid-batch).
    junk = _msg(events_topic("test-005"), b"{not json")
    elsewhere = _msg(events_topic("test-006"), b"{not json")  # same bytes, other topic
    batch = [junk, junk, elsewhere]
    first = _write(engine, batch)
    again = _write(engine, batch)
    assert first.dead_letters == again.dead_letters == 3  # type: ignore[attr-defined]
    fresh(session)
    letters = session.execute(select(DeadLetter).order_by(DeadLetter.id)).scalars().all()
    assert [(d.topic, d.payload) for d in letters] == [(junk.topic, junk.payload),
                                                       (elsewhere.topic, elsewhere.payload)]


def test_a_refused_vend_is_stored_and_is_neither_a_dispense_nor_a_failure(
    engine: Engine, session: Session
) -> None:
    register(session, "test-001", count=8)
    refused = vend("test-001", 1, result=payloads.VendResult.REFUSED)
    jam = vend("test-001", 2, result=payloads.VendResult.JAM)
    _write(engine, [_event_msg(refused)])
    assert _count(session, DispenseEvent, machine_id="test-001", result="refused") == 1
    assert _slot(session, "test-001").count == 8
    assert _count(session, Alert, status="open") == 0  # the machine did as it was told
    _write(engine, [_event_msg(jam)])
    assert _count(session, Alert, type="vend_failure", status="open") == 1
