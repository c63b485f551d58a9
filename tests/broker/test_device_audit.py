"""Device credentials through the API and the CLI, each change with its audit record."""

from __future__ import annotations

import getpass
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from backend.app import create_app
from backend.auth.tokens import create_token
from backend.config import Settings
from backend.db import make_engine, migrate
from backend.models import AuditRecord, Machine
from simulators.broker import MosquittoBroker
from tests.broker.cli_runner import nx_backend
from tests.broker.helpers import Probe, wait_until
from tests.broker.test_revoke import _connects, _env
from tests.broker.test_revoke import broker as broker  # the fixture
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES
from tests.http_server import serve_http
from tests.postgres import create_pg_database, drop_pg_database, postgres_unavailable


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database: a SQLite file, or a fresh PostgreSQL database where one answers."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nx.db'}"
        migrate(url)
        yield url
        return
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    url = create_pg_database()
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(url)


def _trail(url: str) -> list[AuditRecord]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(AuditRecord).order_by(col(AuditRecord.id))).all())
    finally:
        engine.dispose()


def _machine(url: str, machine_id: str) -> Machine | None:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return session.get(Machine, machine_id)
    finally:
        engine.dispose()


@pytest.fixture
def api(broker: MosquittoBroker, database: str) -> Iterator[tuple[httpx.Client, dict[str, dict[
        str, str]]]]:
    """The API managing the broker's password file, and bearer headers per role."""
    engine = make_engine(database)
    with Session(engine) as session:
        headers = {role: {"Authorization": "Bearer " + create_token(
            session, name=f"t-{role}", role=role)} for role in ("admin", "provisioning",
                                                               "outreach")}
    engine.dispose()
    settings = Settings(environment="test", database_url=database,
                        broker_password_file=broker.password_file,
                        broker_pid_file=broker.pid_file,  # type: ignore[attr-defined]
                        mqtt_host=broker.host, mqtt_port=broker.port,
                        mqtt_username=BACKEND_USER, mqtt_password=BACKEND_PASSWORD)
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=30) as http:
        yield http, headers


NEW = {"machine_id": "site-120", "name": "Harbour Clinic", "lat": 47.6, "lon": -122.3,
       "area": "north"}


def test_device_routes_change_credentials_and_record_each_change(
    api: tuple[httpx.Client, dict[str, dict[str, str]]], broker: MosquittoBroker, database: str
) -> None:
    http, headers = api
    assert http.post("/api/v1/devices", json=NEW, headers=headers["outreach"]).status_code == 403
    made = http.post("/api/v1/devices", json=NEW,
                     headers={**headers["provisioning"], "X-Request-ID": "deploy-7"})
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    password = made.json()["mqtt_password"]
    assert tomllib.loads(made.json()["agent_config"])["mqtt_password"] == password
    wait_until(lambda: _connects(broker, "site-120", password), message="new machine accepted")
    again = http.post("/api/v1/devices", json=NEW, headers=headers["provisioning"])
    assert again.status_code == 409
    trail = _trail(database)
    assert [(r.action, r.actor, r.request_id) for r in trail] == [
        ("machine.register", "t-provisioning", "deploy-7"),
        ("device.add", "t-provisioning", "deploy-7")]
    assert trail[0].after is not None
    assert trail[0].after["area"] == "north"
    assert trail[1].after == {"credential": "password", "plugin": False, "registered": True}
    assert password not in str([(r.before, r.after) for r in trail])

    assert http.post("/api/v1/devices/site-120/rotate",
                     headers=headers["provisioning"]).status_code == 403
    rotated = http.post("/api/v1/devices/site-120/rotate", headers=headers["admin"])
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()["mqtt_password"]
    wait_until(lambda: not _connects(broker, "site-120", password), message="old refused")
    assert _connects(broker, "site-120", fresh)

    live = Probe(broker.host, broker.port, "test-002", TEST_MACHINES["test-002"])
    assert not live.connect().is_failure
    try:
        kicked = http.post("/api/v1/devices/test-002/kick", headers=headers["admin"])
        assert kicked.status_code == 200, kicked.text
        wait_until(live.disconnected.is_set, message="kicked client disconnected")
    finally:
        live.close()

    revoked = http.post("/api/v1/devices/site-120/revoke", json={"deactivate": True},
                        headers=headers["provisioning"])
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["password_removed"], revoked.json()["deactivated"]) == (True, True)
    assert not _connects(broker, "site-120", fresh)
    machine = _machine(database, "site-120")
    assert machine is not None
    assert not machine.active
    assert http.post("/api/v1/devices/site-120/revoke",
                     headers=headers["admin"]).status_code == 404
    assert http.post("/api/v1/devices/Bad_Id!/kick", headers=headers["admin"]).status_code == 422
    assert [(r.action, r.object_id, r.actor) for r in _trail(database)[2:]] == [
        ("device.rotate", "site-120", "t-admin"),
        ("device.kick", "test-002", "t-admin"),
        ("machine.deactivate", "site-120", "t-provisioning"),
        ("device.revoke", "site-120", "t-provisioning")]
    assert _trail(database)[-1].after == {"plugin_client_removed": False,
                                          "password_removed": True, "certificates_revoked": []}


def test_a_credential_that_cannot_be_made_leaves_no_machine_and_no_record(
    broker: MosquittoBroker, database: str, tmp_path: Path
) -> None:
    engine = make_engine(database)
    with Session(engine) as session:
        token = create_token(session, name="t-admin", role="admin")
    engine.dispose()
    # A password file in a directory that is a file: the credential cannot be written.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    settings = Settings(environment="test", database_url=database,
                        broker_password_file=blocker / "passwd")
    with serve_http(create_app(settings)) as base_url:
        refused = httpx.post(f"{base_url}/api/v1/devices", json=NEW, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 503, refused.text
    assert _machine(database, "site-120") is None
    assert _trail(database) == []


def test_device_commands_record_the_os_user(broker: MosquittoBroker, database: str) -> None:
    env = {**_env(broker), "NX_DATABASE_URL": database}
    me = f"cli:{getpass.getuser()}"
    added = nx_backend("device", "add", "site-121", "--lat", "1", "--lon", "2", "--name", "x",
                       env=env)
    assert added.returncode == 0, added.stderr
    assert nx_backend("device", "rotate", "site-121", env=env).returncode == 0
    assert nx_backend("device", "kick", "test-001", env=env).returncode == 0
    revoked = nx_backend("device", "revoke", "site-121", "--deactivate", env=env)
    assert revoked.returncode == 0, revoked.stderr
    refused = nx_backend("device", "revoke", "site-121", env=env)
    assert refused.returncode == 1
    service = nx_backend("device", "service-password", "nx-api", env=env)
    assert service.returncode == 0, service.stderr
    assert service.stdout.strip() not in str([r.after for r in _trail(database)])
    assert [(r.actor, r.action, r.object_id) for r in _trail(database)] == [
        (me, "machine.register", "site-121"), (me, "device.add", "site-121"),
        (me, "device.rotate", "site-121"), (me, "device.kick", "test-001"),
        (me, "machine.deactivate", "site-121"), (me, "device.revoke", "site-121"),
        (me, "service.add", "nx-api")]
