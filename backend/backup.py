"""Online backup and restore of the embedded SQLite database (SQLite's backup API).

``backup`` copies the database in one step of ``sqlite3.Connection.backup``:
one read transaction, so the copy is the state of one moment, while ingest and
the API go on writing (in WAL mode a reader does not hold writers up). The
copy is checked (``PRAGMA integrity_check``), made a single self-contained
file, flushed to disk and only then renamed to its name.

``restore`` checks the backup the same way and its schema revision, then
refuses while any other process has the database open (a running ``serve``
or ``ingest`` would go on from state the restore takes away), unless forced,
and copies the backup into the database through the same API, under an
exclusive lock.

PostgreSQL has its own tools (``pg_dump`` / ``pg_restore``, or base backups
with WAL archiving); these commands refuse it and say so.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

POSTGRES_ADVICE = (
    "this database is PostgreSQL: back it up with its own tools, e.g. "
    "`pg_dump --format=custom --file=FILE DBNAME` and restore with `pg_restore --clean "
    "--dbname=DBNAME FILE` (or base backups with WAL archiving for point-in-time recovery)"
)


class BackupError(RuntimeError):
    """The backup or restore cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class BackupInfo:
    """What a backup file holds, as checked."""

    path: Path
    size_bytes: int
    revision: str | None


def sqlite_path(url: str) -> Path:
    """Return the file of a SQLite URL; refuse PostgreSQL and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        raise BackupError(POSTGRES_ADVICE)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(f"cannot back up a {parsed.get_backend_name()} database")
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith(
            "file:"):
        raise BackupError("the database is not a SQLite file")
    return Path(parsed.database)


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def _check(connection: sqlite3.Connection, what: str) -> None:
    result = [r[0] for r in connection.execute("PRAGMA integrity_check").fetchall()]
    if result != ["ok"]:
        raise BackupError(f"{what} fails SQLite's integrity check: {'; '.join(result[:5])}")


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def backup(url: str, out: Path) -> BackupInfo:
    """Copy the SQLite database at ``url`` to ``out``, consistent while others write."""
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise BackupError(f"no database at {source_path}")
    out = out.resolve()
    if out == source_path.resolve():
        raise BackupError("the backup cannot overwrite the database itself")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    # Read-write, though it only reads: a read-only connection to a WAL database cannot
    # always set up the shared index another process left.
    source = sqlite3.connect(source_path, timeout=30)
    try:
        target = sqlite3.connect(partial)
        try:
            # One step (pages=-1): one read transaction, one moment of the database.
            source.backup(target, pages=-1)
            # One file, no -wal beside it: the copy can be moved and opened anywhere.
            target.execute("PRAGMA journal_mode=DELETE")
            _check(target, "the copy")
            revision = _revision(target)
        finally:
            target.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    _fsync(partial)
    partial.replace(out)
    _fsync(out.parent)
    return BackupInfo(out, out.stat().st_size, revision)


def inspect_backup(path: Path) -> BackupInfo:
    """Check a backup file (integrity, schema revision) without changing it."""
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be opened as SQLite: {exc}") from None
    try:
        _check(connection, str(path))
        return BackupInfo(path, path.stat().st_size, _revision(connection))
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database: {exc}") from None
    finally:
        connection.close()


def _take_alone(path: Path) -> sqlite3.Connection:
    """Open the database with an exclusive lock; fail if any other connection has it open.

    In exclusive locking mode SQLite needs the database to itself: in WAL mode
    every other connection, even an idle one in a pool, keeps a lock that makes
    this fail at once (busy timeout 0).
    """
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        connection.execute("COMMIT")  # the lock stays: exclusive mode never lets it go
    except sqlite3.OperationalError:
        connection.close()
        raise
    return connection


def restore(url: str, backup_file: Path, *, known_revisions: set[str], force: bool = False
            ) -> BackupInfo:
    """Bring the database at ``url`` back to ``backup_file``'s state."""
    target_path = sqlite_path(url)
    info = inspect_backup(backup_file)
    if info.revision is None or info.revision not in known_revisions:
        raise BackupError(f"{backup_file} is at schema {info.revision or '(none)'}, which this "
                          "code does not know: restore it with the version that made it")
    target_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        target = _take_alone(target_path)
    except sqlite3.OperationalError:
        if not force:
            raise BackupError(
                f"{target_path} is open in another process (a running `nx-backend serve` or "
                "`ingest`?): stop them first, or pass --force to restore under them") from None
        target = sqlite3.connect(target_path, timeout=60)
    source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    try:
        source.backup(target, pages=-1)
        with contextlib.suppress(sqlite3.OperationalError):  # busy under --force: leave it
            target.execute("PRAGMA journal_mode=WAL")
        _check(target, f"the restored {target_path}")
    finally:
        source.close()
        target.close()
    return info
