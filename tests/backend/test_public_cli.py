"""``nx-backend public ...`` and the migration that adds the public listing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlmodel import Session

from backend import crud
from backend.db import alembic_config, make_engine, migrate
from backend.models import Machine, utcnow
from backend.public.feed import read_listing
from simulators.broker import free_port
from tests.backend.procs import REPO
from tests.waiting import wait_until


def _public(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-c", "from backend.cli import main; main()",
                           "public", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def cli_db(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A migrated SQLite database (the CLI's SQL is crud's, tested on both databases)."""
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    engine = make_engine(url, immediate=True)
    try:
        yield url, engine
    finally:
        engine.dispose()


def _machine(engine: Engine, machine_id: str) -> Machine:
    with Session(engine) as session:
        machine = session.get(Machine, machine_id)
        assert machine is not None
        return machine


def test_set_list_out_of_service_unlist(cli_db: tuple[str, Engine]) -> None:
    migrated_url, engine = cli_db
    with Session(engine) as session:
        crud.register_machine(session=session, machine_id="test-001", name="private",
                              lat=40.7, lon=-74.0, actor="test")
    done = _public(migrated_url, "set", "test-001", "--name", "Harbour Clinic",
                   "--hours", "Mo-Fr 08:00-20:00")
    assert done.returncode == 0, done.stderr
    assert "test-001: listed" in done.stderr
    machine = _machine(engine, "test-001")
    public_id = machine.public_id
    assert (machine.public_name, machine.opening_hours, machine.in_service) == (
        "Harbour Clinic", "Mo-Fr 08:00-20:00", True)
    listed = _public(migrated_url, "list")
    assert listed.stdout.splitlines()[1] == (
        f"test-001\t{public_id}\tyes\tHarbour Clinic\tMo-Fr 08:00-20:00")
    done = _public(migrated_url, "set", "test-001", "--out-of-service", "--no-hours")
    assert "test-001: not listed" in done.stderr
    assert (_machine(engine, "test-001").in_service, _machine(engine, "test-001").opening_hours
            ) == (False, None)
    assert _public(migrated_url, "unlist", "test-001").returncode == 0
    machine = _machine(engine, "test-001")
    assert (machine.public_name, machine.public_id) == (None, public_id)
    _public(migrated_url, "set", "test-001", "--name", "Harbour Clinic", "--in-service")
    assert _machine(engine, "test-001").public_id == public_id  # the same key for maps


def test_bad_input_is_refused_and_changes_nothing(cli_db: tuple[str, Engine]) -> None:
    migrated_url, engine = cli_db
    with Session(engine) as session:
        crud.register_machine(session=session, machine_id="test-001", name="private",
                              lat=40.7, lon=-74.0, actor="test")
    bad_name = _public(migrated_url, "set", "test-001", "--name", "Clinic\nsecond line")
    assert bad_name.returncode == 1
    assert "public_name" in bad_name.stderr
    assert "Traceback" not in bad_name.stderr
    unknown = _public(migrated_url, "set", "nope-001", "--name", "Somewhere")
    assert unknown.returncode == 1
    assert "'nope-001' is not registered" in unknown.stderr
    nothing = _public(migrated_url, "set", "test-001")
    assert nothing.returncode == 1
    assert "nothing to change" in nothing.stderr
    assert _machine(engine, "test-001").public_name is None


def _public_feed_revisions() -> tuple[str, str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    for revision in script.walk_revisions():
        if revision.path and Path(revision.path).stem.endswith("_public_feed"):
            assert isinstance(revision.down_revision, str)
            return revision.down_revision, revision.revision
    raise AssertionError("no public_feed migration")


def test_upgrade_publishes_nothing(db_url: str) -> None:
    before, _ = _public_feed_revisions()
    migrate(db_url, before)
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO machine (id, name, lat, lon, active, status, created_at) "
                "VALUES ('old-001', 'Old', 40.7, -74.0, true, 'online', '2026-11-24 12:00:00')"))
        migrate(db_url)
        machine = _machine(engine, "old-001")
        assert (machine.in_service, machine.public_name, machine.public_id) == (True, None, None)
        with engine.connect() as connection:
            assert read_listing(connection, now=utcnow(), silent_after=timedelta(hours=1)) == []
    finally:
        engine.dispose()


def test_serve_keeps_public_requests_out_of_the_access_log(
    cli_db: tuple[str, Engine], tmp_path: Path
) -> None:
    url, _ = cli_db
    port = free_port()
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url}
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-c", "from backend.cli import main; main()", "serve",
             "--no-ingest", "--no-hotspots", "--no-notify", "--port", str(port)],
            cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, what="nx-backend serve")
        assert httpx.get(f"{base}/public/v1/machines", timeout=5).status_code == 200
        assert httpx.get(f"{base}/public/v1/machines.geojson", timeout=5).status_code == 200
        assert httpx.get(f"{base}/api/v1/alerts", timeout=5).status_code == 401
        wait_until(lambda: "/api/v1/alerts" in log.read_text(), what="the access log line")
    finally:
        server.terminate()
        server.wait(30)
    text = log.read_text()
    assert '"GET /healthz HTTP/1.1" 200' in text  # the access log is on
    assert "/public/" not in text
