"""``nx-backend backup`` and ``restore`` on SQLite: a backup taken while a real ingest worker
writes is one consistent moment; restore refuses while the database is in use, checks what it
brings back, and once ingest runs again redelivered messages fill the rest exactly once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from backend.backup import BackupError, backup, restore, sqlite_path
from backend.db import head_revision, make_engine, migrate
from backend.models import DispenseEvent
from simulators.broker import MosquittoBroker
from tests.backend.conftest import register
from tests.backend.helpers import WAIT_S, wait_until
from tests.backend.procs import REPO, Fleet, IngestProcess
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER

MACHINES = {f"bak-{n:03d}": f"bak-pw-{n:03d}" for n in range(1, 21)}
EVENTS_PER_MACHINE = 100
START_COUNT = 200
TOTAL = len(MACHINES) * EVENTS_PER_MACHINE


@pytest.fixture
def broker_users() -> dict[str, str]:
    """The backend and 20 simulated machines."""
    return {BACKEND_USER: BACKEND_PASSWORD, **MACHINES}


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-c", "from backend.cli import main; main()", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def _stored(url: str) -> int:
    """Count stored vends with a connection of its own, closed at once (restore needs that)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(
                select(func.count()).select_from(DispenseEvent)).scalar_one())
    finally:
        engine.dispose()


def _subscribed(worker: IngestProcess) -> None:
    """Wait for the worker's subscription (a loaded 2-core box may take its time to start)."""
    wait_until(lambda: any("subscribed to" in line for line in worker.lines)
               or worker.process.poll() is not None, timeout=WAIT_S * 4, what="ingest to start")
    assert worker.process.poll() is None, "".join(worker.lines)


def _consistent(path: Path) -> int:
    """Check that every machine's stock matches the vends stored for it; return the vends."""
    with sqlite3.connect(path) as connection:
        vends = dict(connection.execute(
            "SELECT machine_id, count(*) FROM dispense_event GROUP BY machine_id").fetchall())
        for machine_id, count in connection.execute("SELECT machine_id, count FROM slot"):
            assert count == START_COUNT - vends.get(machine_id, 0), machine_id
    connection.close()
    return sum(vends.values())


def test_backup_mid_ingest_restore_and_redelivery_store_each_event_once(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    engine = make_engine(url, immediate=True)
    with Session(engine) as session:
        for machine_id in MACHINES:
            register(session, machine_id, count=START_COUNT, capacity=START_COUNT)
    engine.dispose()
    saved = tmp_path / "backups" / "nx.db"
    saved.parent.mkdir()
    worker = IngestProcess(url, mosquitto)
    fleet = Fleet(mosquitto, MACHINES, EVENTS_PER_MACHINE)
    try:
        _subscribed(worker)
        fleet.start()
        wait_until(lambda: _stored(url) >= TOTAL // 10, what="a tenth of the stream")
        # In this process, to take it at this moment (the command is run below).
        assert backup(url, saved).revision == head_revision()
        in_backup = _consistent(saved)
        assert 0 < in_backup < TOTAL, "the backup was not taken mid-ingest"
        refused = _cli(url, "restore", str(saved))
        assert refused.returncode == 2
        assert "open in another process" in refused.stderr
        wait_until(lambda: _stored(url) > in_backup, what="ingest to go on past the backup")
    finally:
        worker.terminate()
    fleet.join()  # what the worker did not take waits in the broker for its session
    assert _cli(url, "restore", str(saved)).returncode == 0
    assert _stored(url) == in_backup
    _consistent(sqlite_path(url))
    worker = IngestProcess(url, mosquitto)
    try:
        _subscribed(worker)
        # The events acknowledged after the backup are in no queue any more: the machines
        # send their whole history again (the agent's outbox would not: see docs/backend.md),
        # and what the database already holds is taken as a duplicate.
        again = Fleet(mosquitto, MACHINES, EVENTS_PER_MACHINE)
        again.start()
        again.join()
        wait_until(lambda: _stored(url) >= TOTAL, timeout=WAIT_S * 4,
                   what=f"{TOTAL} events after the restore")
    finally:
        worker.terminate()
    assert _consistent(sqlite_path(url)) == TOTAL
    with sqlite3.connect(sqlite_path(url)) as connection:
        keys = connection.execute("SELECT count(*) FROM (SELECT DISTINCT machine_id, boot_id, "
                                  "seq FROM dispense_event)").fetchone()[0]
        counts = {row[0] for row in connection.execute("SELECT count FROM slot")}
    connection.close()
    assert (keys, counts) == (TOTAL, {START_COUNT - EVENTS_PER_MACHINE})


def test_restore_checks_the_backup_and_force_restores_under_a_reader(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    known = {head_revision()}
    made = _cli(url, "backup", "--out", str(tmp_path / "copy.db"))
    assert made.returncode == 0, made.stderr
    assert head_revision() in made.stdout
    assert not (tmp_path / "copy.db-wal").exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(BackupError, match="not a SQLite database"):
        restore(url, garbage, known_revisions=known)
    with pytest.raises(BackupError, match="does not know"):
        restore(url, tmp_path / "copy.db", known_revisions={"9999"})
    reader = sqlite3.connect(tmp_path / "nx.db")
    try:
        reader.execute("SELECT count(*) FROM machine").fetchone()
        with pytest.raises(BackupError, match="open in another process"):
            restore(url, tmp_path / "copy.db", known_revisions=known)
        assert restore(url, tmp_path / "copy.db", known_revisions=known, force=True).revision
    finally:
        reader.close()
    with pytest.raises(BackupError, match="cannot overwrite"):
        backup(url, tmp_path / "nx.db")


def test_postgres_is_refused_with_the_tool_to_use(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    made = _cli(url, "backup", "--out", str(tmp_path / "x"))
    assert made.returncode == 2
    assert "pg_dump" in made.stderr
    assert "pg_restore" in _cli(url, "restore", str(tmp_path / "x")).stderr
