"""The durable outbox: transactions, coalescing, the size bound, restarts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from firmware_agent.store import HANDLED_RETENTION_S, Kind, OutMessage, Store, StoreError


def msg(n: int, kind: Kind = Kind.VITAL, key: str | None = None) -> OutMessage:
    return OutMessage("nx/v1/machines/test-001/events", f"{n}".encode(), kind=kind,
                      coalesce_key=key)


def test_rows_and_state_survive_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db", max_rows=100)
    store.append([msg(1), msg(2)], {"next_seq": "2"})
    store.close()
    again = Store(tmp_path / "a.db", max_rows=100)
    assert again.depth == 2
    assert again.get("next_seq") == "2"
    rows = again.pending_after(0, 10)
    assert [r.message.payload for r in rows] == [b"1", b"2"]
    assert again.delete([rows[0].id]) == 1
    assert again.delete([rows[0].id]) == 0
    assert again.depth == 1
    assert [r.message.payload for r in again.pending_after(rows[0].id, 10)] == [b"2"]


def test_handled_commands_survive_reopening_and_are_forgotten_after_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "a.db", max_rows=100)
    store.append([msg(1)], handled=("c1", b'{"ok":true}'))
    # A second record of the same id keeps the first result.
    store.append([msg(2)], handled=("c1", b'{"ok":false}'))
    store.close()
    again = Store(tmp_path / "a.db", max_rows=100)
    assert again.handled_result("c1") == b'{"ok":true}'
    assert again.handled_result("c2") is None
    later = time.time() + HANDLED_RETENTION_S + 1
    monkeypatch.setattr(time, "time", lambda: later)
    again.append([], handled=("c2", b"{}"))
    assert again.handled_result("c1") is None
    assert again.handled_result("c2") == b"{}"


def test_wal_and_full_sync(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db", max_rows=100)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_coalesced_messages_keep_only_the_newest(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db", max_rows=100)
    store.append([msg(1, Kind.STATE, "telemetry"), msg(2), msg(3, Kind.STATE, "telemetry")])
    store.append([msg(4, Kind.STATE, "telemetry")])
    assert [r.message.payload for r in store.pending_after(0, 10)] == [b"2", b"4"]
    assert store.depth == 2


def test_bound_drops_minor_events_never_vital_ones(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db", max_rows=100)
    store.append([msg(n, Kind.EVENT) for n in range(50)])
    store.append([msg(n) for n in range(100, 180)])
    assert store.depth == 100
    assert store.count_by_kind() == {"vital": 80, "event": 20}
    # Only vital rows left to drop: the bound is exceeded rather than losing a dispense.
    store.append([msg(n) for n in range(200, 260)])
    assert store.count_by_kind() == {"vital": 140}
    assert store.dropped == 50


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db", max_rows=100)
    bad = OutMessage("t", b"x", kind="nonsense")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        store.append([msg(1), bad], {"next_seq": "9"})
    assert store.depth == 0
    assert store.get("next_seq") is None


def test_garbage_file_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    path.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(StoreError, match="cannot use the agent store"):
        Store(path, max_rows=100)
    assert path.read_bytes() == b"\x00garbage" * 512
