"""Ingest keeps the lots first-expiry-first-out as vends arrive, and keeps temperature readings."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import NaloxoneLot, Slot, TemperatureReading, utcnow
from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel, machine_topic
from tests.backend.conftest import register
from tests.backend.helpers import T0, events_topic, fresh, restock_event, vend


def _write(engine: Engine, messages: list[tuple[str, bytes]]) -> None:
    with Session(engine) as session:
        BatchWriter(default_low_threshold=2).write(
            session, [Message(t, p, utcnow()) for t, p in messages], utcnow())
        session.commit()


def test_vends_take_the_earliest_expiring_lot_in_one_batch(
    engine: Engine, session: Session
) -> None:
    register(session, "lot-001", count=6, capacity=10)
    soon, late = date(2027, 3, 1), date(2028, 3, 1)
    with Session(engine) as write:
        write.add_all([
            NaloxoneLot(product="naloxone-nasal-4mg", lot_number="LATE", expiry=late,
                        machine_id="lot-001", slot=1, quantity=3),
            NaloxoneLot(product="naloxone-nasal-4mg", lot_number="SOON", expiry=soon,
                        machine_id="lot-001", slot=1, quantity=2),
        ])
        write.commit()
    # 6 in the slot, 5 in known lots: the untracked one goes first, then SOON, then LATE.
    _write(engine, [(events_topic("lot-001"), vend("lot-001", s).to_bytes()) for s in range(1, 5)])
    fresh(session)
    lots = {lot.lot_number: lot for lot in session.exec(select(NaloxoneLot)).all()}
    assert (lots["SOON"].quantity, lots["LATE"].quantity) == (0, 2)
    assert lots["SOON"].emptied_at is not None
    assert session.get(Slot, ("lot-001", 1)).count == 2  # type: ignore[union-attr]
    # A restock event from the machine (count set by the keypad) adds untracked stock;
    # a later vend takes it before the known lot.
    _write(engine, [(events_topic("lot-001"), restock_event("lot-001", 5, 1, 5).to_bytes()),
                    (events_topic("lot-001"), vend("lot-001", 6).to_bytes())])
    fresh(session)
    assert session.exec(select(NaloxoneLot.quantity).where(
        col(NaloxoneLot.lot_number) == "LATE")).one() == 2


def test_heartbeat_and_crossing_readings_are_kept(engine: Engine, session: Session) -> None:
    register(session, "lot-002")
    beat = payloads.Telemetry(machine_id="lot-002", boot_id=1, device_time=T0, uptime_s=5,
                              temperature_c=31.5)
    crossing = payloads.TemperatureEvent(machine_id="lot-002", boot_id=1, seq=1,
                                         device_time=T0 + timedelta(minutes=5), celsius=41.0,
                                         excursion=True)
    _write(engine, [(machine_topic("lot-002", Channel.TELEMETRY), beat.to_bytes()),
                    (events_topic("lot-002"), crossing.to_bytes())])
    fresh(session)
    got = session.exec(select(TemperatureReading.at, TemperatureReading.celsius)
                       .order_by(col(TemperatureReading.at))).all()
    assert [(at, c) for at, c in got] == [(T0, 31.5), (T0 + timedelta(minutes=5), 41.0)]
