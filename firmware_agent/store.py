"""The agent's durable store: the outbox of messages to publish, and its own small state.

One SQLite file in the data dir, WAL with ``synchronous=FULL``: when
``append`` returns, the messages and the state written with them survive a
power cut. A row leaves the outbox only through ``delete`` (after the
broker's PUBACK) or through the size bound, which drops what is worth least:
superseded telemetry and stock snapshots first (they are always coalesced to
the newest), then the oldest minor events; dispense and restock events never.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 512

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    kind TEXT NOT NULL,
    coalesce_key TEXT
);
CREATE INDEX IF NOT EXISTS outbox_coalesce ON outbox (coalesce_key) WHERE coalesce_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS handled_command (
    command_id TEXT PRIMARY KEY,
    result BLOB NOT NULL,
    handled_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS handled_command_at ON handled_command (handled_at);
"""

HANDLED_RETENTION_S = 8 * 86_400
"""How long a carried-out command id is remembered: past the backend's longest
command lifetime (7 days), after which no copy of it can still arrive."""


class StoreError(RuntimeError):
    """The store file cannot be opened or is not an agent database."""


class Kind(StrEnum):
    """How much a message is worth when the disk fills up."""

    VITAL = "vital"
    """Dispense and restock events: never dropped."""
    EVENT = "event"
    """Door, temperature, fault and key events: dropped oldest first, after telemetry."""
    STATE = "state"
    """Telemetry, stock snapshots: coalesced to the newest."""
    RESULT = "result"
    """Command results: dropped like events."""


@dataclass(frozen=True, slots=True)
class OutMessage:
    """A message waiting to be published."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    kind: Kind = Kind.VITAL
    coalesce_key: str | None = None
    """A newer message with the same key supersedes older unsent ones."""


@dataclass(frozen=True, slots=True)
class Row:
    """An outbox row as stored."""

    id: int
    message: OutMessage


class Store:
    """The SQLite outbox and state of one agent; safe to share between threads."""

    def __init__(self, path: Path, *, max_rows: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_rows = max_rows
        self._lock = threading.Lock()
        try:
            # One connection shared under a lock: writes are serialised anyway and
            # this avoids "database is locked" between our own threads.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            # The working set is the head and tail of the outbox; a small page
            # cache keeps a Pi's memory for the rest (SQLite's default is 2 MB).
            self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self._db.executescript(_SCHEMA)
            self._depth = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        except sqlite3.Error as exc:
            # Never "repair" by starting afresh here: the file may hold unsent
            # dispenses, and a fresh store would reuse event ids.
            raise StoreError(f"cannot use the agent store {path}: {exc}") from exc
        self.dropped = 0

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @property
    def depth(self) -> int:
        """Rows in the outbox."""
        return self._depth

    # --- state ----------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """Return the stored state value of ``key``."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, values: Mapping[str, str]) -> None:
        """Store state values durably."""
        self.append((), values)

    # --- outbox ---------------------------------------------------------------------------

    def handled_result(self, command_id: str) -> bytes | None:
        """Return the result of a command already carried out, or None."""
        with self._lock:
            row = self._db.execute("SELECT result FROM handled_command WHERE command_id = ?",
                                   (command_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def append(self, messages: Sequence[OutMessage], state: Mapping[str, str] = {},
               handled: tuple[str, bytes] | None = None) -> None:
        """Add ``messages`` and write ``state`` in one durable transaction.

        ``handled`` (command id, result) records a command as carried out in the
        same transaction as its result, so that a repeated copy is recognised.
        """
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                added = 0
                for msg in messages:
                    if msg.coalesce_key is not None:
                        gone = db.execute(
                            "DELETE FROM outbox WHERE coalesce_key = ?", (msg.coalesce_key,)
                        ).rowcount
                        added -= gone
                    db.execute(
                        "INSERT INTO outbox (topic, payload, qos, retain, kind, coalesce_key)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (msg.topic, msg.payload, msg.qos, int(msg.retain), msg.kind.value,
                         msg.coalesce_key),
                    )
                    added += 1
                db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    list(state.items()),
                )
                if handled is not None:
                    now = time.time()
                    db.execute("DELETE FROM handled_command WHERE handled_at < ?",
                               (now - HANDLED_RETENTION_S,))
                    db.execute(
                        "INSERT OR IGNORE INTO handled_command (command_id, result, handled_at)"
                        " VALUES (?, ?, ?)",
                        (handled[0], handled[1], now),
                    )
                dropped = self._enforce_bound(self._depth + added)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._depth += added - dropped
            self.dropped += dropped
        if dropped:
            log.warning("outbox over %d rows: dropped %d minor messages", self.max_rows, dropped)

    def _enforce_bound(self, depth: int) -> int:
        excess = depth - self.max_rows
        if excess <= 0:
            return 0
        cur = self._db.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind IN (?, ?)"
            " ORDER BY id LIMIT ?)",
            (Kind.EVENT.value, Kind.RESULT.value, excess),
        )
        return int(cur.rowcount)

    def pending_after(self, cursor: int, limit: int) -> list[Row]:
        """Return up to ``limit`` rows with an id above ``cursor``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, kind, coalesce_key FROM outbox"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (cursor, limit),
            ).fetchall()
        return [
            Row(r[0], OutMessage(r[1], bytes(r[2]), r[3], bool(r[4]), Kind(r[5]), r[6]))
            for r in rows
        ]

    def delete(self, ids: Iterable[int]) -> int:
        """Remove acknowledged rows; return how many were still there."""
        id_list = [(row_id,) for row_id in ids]
        if not id_list:
            return 0
        with self._lock:
            db = self._db
            # A lost delete only means a duplicate publish after a crash, which
            # consumers absorb: no fsync for these, unlike every append.
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.total_changes
                db.executemany("DELETE FROM outbox WHERE id = ?", id_list)
                gone = db.total_changes - before
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            finally:
                db.execute("PRAGMA synchronous = FULL")
            self._depth -= gone
        return gone

    def count_by_kind(self) -> dict[str, int]:
        """Return the number of outbox rows per kind (for tests and diagnostics)."""
        with self._lock:
            rows = self._db.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind").fetchall()
        return {str(kind): int(n) for kind, n in rows}
