"""Who holds a job: PostgreSQL session advisory locks on one dedicated connection.

A session-level advisory lock lives as long as the connection that took it,
so a process that dies (kill -9 included: the kernel closes its socket) drops
its locks at once, and a whole host that vanishes drops them once the
server's TCP keepalive gives up on the connection: the lock connection asks for
both ends' timers of ``dead_link_args`` (``NX_DATABASE_DEAD_LINK_S``, 20 s by
default, plus a probe interval), so the server drops a vanished host's locks,
and the host stops running jobs on a vanished database, within that bound.
SQLite has no advisory locks and is one machine: ``LocalLocks`` grants by a
fixed rule, and the jobs run as they always did, without the run log (a row
every few seconds would end every reader's snapshot on SQLite's one writer).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from backend.db import PG_DEAD_LINK_S, dead_link_args

log = logging.getLogger(__name__)

def lock_key(name: str) -> int:
    """Return a stable signed 64-bit advisory-lock key for ``name``."""
    digest = hashlib.blake2b(f"nx-job:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Locks(Protocol):
    """Say whether this process holds a named job, taking it when it is free."""

    shared: bool
    """Whether other processes compete for the same jobs (then runs are claimed in the log)."""

    def hold(self, name: str) -> bool:
        """Return True while this process holds ``name`` (take it if nobody does)."""
        ...

    def close(self) -> None:
        """Give up every lock."""
        ...


class LocalLocks:
    """One machine (SQLite): grant by a fixed rule, no coordination needed."""

    shared = False

    def __init__(self, grant: Callable[[str], bool] = lambda _name: True) -> None:
        self._grant = grant

    def hold(self, name: str) -> bool:
        """Grant ``name`` if the rule says so."""
        return self._grant(name)

    def close(self) -> None:
        """Nothing to give up."""


class AdvisoryLocks:
    """Session advisory locks on one dedicated PostgreSQL connection, shared by threads."""

    shared = True

    def __init__(self, url: str, dead_link_s: float = PG_DEAD_LINK_S) -> None:
        self._engine: Engine = create_engine(
            url, poolclass=NullPool, connect_args=dead_link_args(dead_link_s))
        self._conn: Connection | None = None
        self._held: set[str] = set()
        self._mutex = threading.Lock()

    def hold(self, name: str) -> bool:
        """Return True while held; a lost connection loses every lock (reconnect next time)."""
        with self._mutex:
            try:
                conn = self._connection()
                if name in self._held:
                    # Still ours only while the session lives: prove it.
                    conn.execute(text("SELECT 1"))
                    return True
                got = bool(conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(name)}
                ).scalar_one())
                if got:
                    self._held.add(name)
                    log.info("took job %s", name)
                return got
            except DBAPIError as exc:
                if self._held:
                    log.warning("lost jobs %s: %s", sorted(self._held), exc.orig)
                self._drop()
                return False

    def close(self) -> None:
        """Close the connection, which releases every lock."""
        with self._mutex:
            self._drop()
        self._engine.dispose()

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _drop(self) -> None:
        self._held.clear()
        if self._conn is not None:
            # Already gone, perhaps: the server dropped its locks with it.
            with contextlib.suppress(DBAPIError):
                self._conn.close()
            self._conn = None


def make_locks(url: str, grant: Callable[[str], bool] = lambda _name: True,
               dead_link_s: float = PG_DEAD_LINK_S) -> Locks:
    """Return advisory locks on PostgreSQL, or ``LocalLocks(grant)`` on SQLite."""
    if make_url(url).get_backend_name() == "postgresql":
        return AdvisoryLocks(url, dead_link_s)
    return LocalLocks(grant)
