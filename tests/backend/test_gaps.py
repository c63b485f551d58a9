"""Delivery-gap detection: the pure scan, and the maintenance pass on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from backend.ingest.gaps import scan_gaps
from backend.ingest.maintenance import mark_silent_machines, scan_delivery_gaps
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import Alert, DeliveryGap, Machine
from tests.backend.conftest import register
from tests.backend.helpers import events_topic, fresh, vend

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=10)
OLD = NOW - timedelta(hours=1)
FRESH = NOW - timedelta(seconds=5)


def test_contiguous_seqs_advance_the_watermark() -> None:
    assert scan_gaps(None, [(5, OLD), (6, OLD), (7, OLD)], now=NOW, timeout=TIMEOUT).watermark == 7


def test_old_hole_is_a_gap_and_young_hole_waits() -> None:
    scan = scan_gaps(0, [(1, OLD), (4, OLD), (5, OLD), (9, FRESH)], now=NOW, timeout=TIMEOUT)
    assert scan.gaps == ((2, 3),)
    assert scan.watermark == 5  # 6..8 may still arrive


def test_repeated_seq_under_another_boot_is_ignored() -> None:
    scan = scan_gaps(None, [(1, OLD), (1, OLD), (2, OLD)], now=NOW, timeout=TIMEOUT)
    assert (scan.watermark, scan.gaps) == (2, ())


@given(st.sets(st.integers(0, 200), min_size=1), st.integers(-1, 50))
def test_every_seq_up_to_the_watermark_is_seen_or_a_gap(seqs: set[int], start: int) -> None:
    seen = [(s, OLD) for s in sorted(seqs) if s > start]
    scan = scan_gaps(start, seen, now=NOW, timeout=TIMEOUT)
    covered = {s for s, _ in seen if s <= scan.watermark}
    for lo, hi in scan.gaps:
        covered |= set(range(lo, hi + 1))
    assert covered == set(range(start + 1, scan.watermark + 1))
    if seen:
        assert scan.watermark == max(s for s, _ in seen)


def _ingest(engine: Engine, seqs: list[int], received: datetime) -> None:
    with Session(engine) as session:
        messages = [Message(events_topic("test-001"), vend("test-001", s).to_bytes(), received)
                    for s in seqs]
        BatchWriter(default_low_threshold=0).write(session, messages, received)
        session.commit()


def _maintain(engine: Engine, now: datetime) -> None:
    with Session(engine) as session:
        scan_delivery_gaps(session, now=now, timeout=TIMEOUT)
        session.commit()


def test_gap_becomes_record_and_alert_then_fills(engine: Engine, session: Session) -> None:
    register(session, "test-001", count=1000, capacity=1000)
    _ingest(engine, [1, 2, 5, 6], OLD)
    _maintain(engine, NOW - timedelta(hours=2))  # too soon: no gap yet
    fresh(session)
    assert session.execute(select(func.count()).select_from(DeliveryGap)).scalar_one() == 0
    _maintain(engine, NOW)
    fresh(session)
    gap = session.execute(select(DeliveryGap)).scalars().one()
    assert (gap.from_seq, gap.to_seq, gap.filled_at) == (3, 4, None)
    alert = session.execute(select(Alert).where(Alert.type == "delivery_gap")).scalars().one()
    assert alert.status == "open"
    machine = session.get(Machine, "test-001")
    assert machine is not None
    assert machine.seq_watermark == 6
    _ingest(engine, [3, 4], NOW)  # the agent's outbox finally delivered them
    _maintain(engine, NOW + timedelta(seconds=1))
    fresh(session)
    gap = session.execute(select(DeliveryGap)).scalars().one()
    assert gap.filled_at is not None
    assert session.get(Alert, alert.id).status == "resolved"  # type: ignore[union-attr]


def test_silent_machine_goes_offline_and_telemetry_brings_it_back(
    engine: Engine, session: Session
) -> None:
    register(session, "test-002")
    machine = session.get(Machine, "test-002")
    assert machine is not None
    machine.status, machine.last_seen = "online", NOW - timedelta(hours=1)
    session.commit()
    with Session(engine) as writing:
        assert mark_silent_machines(writing, now=NOW, timeout=TIMEOUT) == 1
        writing.commit()
    fresh(session)
    assert session.get(Machine, "test-002").status == "offline"  # type: ignore[union-attr]
    open_alerts = select(func.count()).select_from(Alert).where(
        Alert.type == "machine_offline", Alert.status == "open")
    assert session.execute(open_alerts).scalar_one() == 1
    beat = (b'{"schema":1,"machine_id":"test-002","boot_id":1,'
            b'"device_time":"2026-11-24T12:00:00Z","uptime_s":5}')
    with Session(engine) as writing:
        messages = [Message("nx/v1/machines/test-002/telemetry", beat, NOW)]
        BatchWriter(default_low_threshold=2).write(writing, messages, NOW)
        writing.commit()
    fresh(session)
    assert session.get(Machine, "test-002").status == "online"  # type: ignore[union-attr]
    assert session.execute(open_alerts).scalar_one() == 0
