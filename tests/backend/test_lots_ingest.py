"""Ingest keeps the lots first-expiry-first-out as vends arrive, and keeps temperature readings."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from backend.config import Settings
from backend.ingest.committer import Committer
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.jobs.catalog import INGEST_MAINTENANCE, LOT_CHECK, ingest_jobs
from backend.models import Alert, NaloxoneLot, Slot, TemperatureReading, utcnow
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
    telemetry = machine_topic("lot-002", Channel.TELEMETRY)
    _write(engine, [(telemetry, beat.to_bytes()), (events_topic("lot-002"), crossing.to_bytes())])
    # Later heartbeats: 0.2 °C off the last kept one is dropped (the same batch or the
    # next); a step of 0.5 °C, or 30 minutes on, is kept.
    later = [beat.model_copy(update={"device_time": T0 + timedelta(minutes=m), "temperature_c": c})
             for m, c in ((6, 40.8), (7, 40.3), (40, 40.3))]
    _write(engine, [(telemetry, b.to_bytes()) for b in later])
    fresh(session)
    got = session.exec(select(TemperatureReading.at, TemperatureReading.celsius)
                       .order_by(col(TemperatureReading.at))).all()
    assert [(at - T0, c) for at, c in got] == [
        (timedelta(), 31.5), (timedelta(minutes=5), 41.0), (timedelta(minutes=7), 40.3),
        (timedelta(minutes=40), 40.3)]


def _worker_lot_check(engine: Engine, committer: Committer, settings: Settings) -> None:
    """Run the workers' lot check as they do: in maintenance on SQLite, as a shared job on PG."""
    if engine.dialect.name == "sqlite":
        committer._next_maintenance = committer._next_lot_check = 0.0  # the intervals have passed
        committer.maintain()
        return
    [job] = [j for j in ingest_jobs(settings) if j.name == LOT_CHECK]
    assert job.work is not None
    with Session(engine) as session:
        job.work(session, utcnow())
        session.commit()


def test_worker_maintenance_resolves_the_expiry_alert_of_a_lot_vended_out(
    engine: Engine, session: Session, migrated_url: str
) -> None:
    register(session, "lot-003", count=2, capacity=10)
    with Session(engine) as write:
        write.add(NaloxoneLot(product="naloxone-nasal-4mg", lot_number="OLD",
                              expiry=date.today() + timedelta(days=10),
                              machine_id="lot-003", slot=1, quantity=2))
        write.commit()
    settings = Settings(environment="test", database_url=migrated_url)
    committer = Committer(settings, engine, lambda _s: False)
    _worker_lot_check(engine, committer, settings)
    fresh(session)
    [alert] = session.exec(select(Alert).where(col(Alert.type) == "expiring_stock")).all()
    assert alert.status == "open"
    assert alert.details["lot_number"] == "OLD"
    _write(engine, [(events_topic("lot-003"), vend("lot-003", s).to_bytes()) for s in (1, 2)])
    _worker_lot_check(engine, committer, settings)
    fresh(session)
    assert session.get(Alert, alert.id).status == "resolved"  # type: ignore[union-attr]


def test_maintenance_prunes_temperature_readings_past_the_retention(
    engine: Engine, session: Session, migrated_url: str
) -> None:
    register(session, "lot-004")
    now = utcnow()
    ages = (500, 401, 399, 1)  # days
    with Session(engine) as write:
        write.add_all([TemperatureReading(machine_id="lot-004", at=now - timedelta(days=d),
                                          celsius=20.0 + i) for i, d in enumerate(ages)])
        write.commit()
    settings = Settings(environment="test", database_url=migrated_url)
    assert settings.temperature_retention_days == 400
    if engine.dialect.name == "sqlite":
        committer = Committer(settings, engine, lambda _s: False)
        committer._next_maintenance = 0.0  # the interval has passed
        committer.maintain()
    else:
        [job] = [j for j in ingest_jobs(settings) if j.name == INGEST_MAINTENANCE]
        assert job.work is not None
        with Session(engine) as write:
            job.work(write, utcnow())
            write.commit()
    fresh(session)
    kept = session.exec(select(TemperatureReading.celsius)
                        .order_by(col(TemperatureReading.celsius))).all()
    assert kept == [22.0, 23.0]  # the 399- and 1-day-old readings
