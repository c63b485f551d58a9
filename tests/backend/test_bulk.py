"""The bulk event insert: new keys back, duplicates skipped, values stored as given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, select, text
from sqlmodel import Session

from backend.dbutil import insert_ignore
from backend.ingest.bulk import SQLITE_ROWS_PER_STATEMENT, insert_new, sqlite_chunk_sizes
from backend.models import DispenseEvent
from tests.backend.conftest import register

KEY = ("machine_id", "boot_id", "seq")
LOCAL = timezone(timedelta(hours=2))


def _row(seq: int, product: str | None = "naloxone-nasal-4mg") -> dict[str, Any]:
    return {"machine_id": "bulk-001", "boot_id": 2**40, "seq": seq,
            "device_time": datetime(2026, 11, 24, 14, 0, seq, tzinfo=LOCAL),
            "received_at": datetime(2026, 11, 24, 12, 0, tzinfo=UTC), "slot": 1,
            "product": product, "result": "ok", "drop_confirmed": seq % 2 == 0,
            "source": "nxlink"}


def test_insert_new_returns_only_the_rows_it_inserted(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "bulk-001")
        first = insert_new(session, DispenseEvent, [_row(1), _row(2, None)], KEY)
        again = insert_new(session, DispenseEvent, [_row(2), _row(3)], KEY)
        session.commit()
        stored = session.exec(select(DispenseEvent).order_by(DispenseEvent.seq)).all()
    assert first == {("bulk-001", 2**40, 1), ("bulk-001", 2**40, 2)}
    assert again == {("bulk-001", 2**40, 3)}
    rows = [r[0] for r in stored]
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[1].product is None
    assert [r.drop_confirmed for r in rows] == [False, True, False]
    assert rows[0].device_time == datetime(2026, 11, 24, 12, 0, 1, tzinfo=UTC)


def test_insert_new_stores_values_as_a_values_insert_does(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "bulk-001")
        odd = datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)
        insert_new(session, DispenseEvent, [_row(1) | {"device_time": odd}], KEY)
        insert_ignore(session, DispenseEvent, [_row(2) | {"device_time": odd}])
        session.commit()
        raw = session.execute(text("SELECT seq, device_time, received_at, drop_confirmed "
                                   "FROM dispense_event ORDER BY seq")).all()
        count = session.execute(text("SELECT count(*) FROM dispense_event "
                                     "WHERE device_time = :t"), {"t": raw[1][1]}).scalar_one()
    assert raw[0][1:3] == raw[1][1:3]
    assert [bool(r[3]) for r in raw] == [False, True]
    assert count == 2


def test_sqlite_statements_come_in_few_sizes() -> None:
    # Each size is a prepared statement the writer keeps: few sizes, none too big.
    sizes_seen: set[int] = set()
    for total in range(0, 1001):
        sizes = sqlite_chunk_sizes(total)
        assert sum(sizes) == total
        assert all(0 < s <= SQLITE_ROWS_PER_STATEMENT for s in sizes)
        assert len(sizes) <= total // SQLITE_ROWS_PER_STATEMENT + 7
        sizes_seen.update(sizes)
    assert sizes_seen == {100, 64, 32, 16, 8, 4, 2, 1}


def test_insert_new_stores_every_row_of_an_odd_sized_batch(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "bulk-001")
        at = datetime(2026, 11, 24, tzinfo=UTC)
        rows = [_row(1) | {"seq": s, "device_time": at + timedelta(seconds=s)}
                for s in range(1, 228)]
        inserted = insert_new(session, DispenseEvent, rows, KEY)
        session.commit()
        seqs = session.execute(text("SELECT seq FROM dispense_event ORDER BY seq")).scalars().all()
    assert len(inserted) == 227
    assert list(seqs) == list(range(1, 228))
