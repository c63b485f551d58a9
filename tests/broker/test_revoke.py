"""``nx-backend device`` add, rotate and revoke against a legacy password-file broker."""

from __future__ import annotations

import stat
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from backend import crud
from backend.db import make_engine, migrate
from simulators.broker import MosquittoBroker
from tests.broker.cli_runner import nx_backend
from tests.broker.helpers import Probe, wait_until
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES

# The password-file mode of `nx-backend device` manages a legacy broker until it
# is migrated to the plugin; the plugin's own flows are in test_dynsec.py.
LEGACY_TEMPLATE = Path(__file__).with_name("legacy-password.conf")


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A broker that writes its own pid file, as a production one does."""
    # The pid file lives in the broker's own data directory: Mosquitto has
    # dropped to its user by then and cannot reach pytest's 0700 tmp_path.
    workdir = Path(tempfile.mkdtemp(prefix="nx-broker-"))
    pid_file = workdir / "data" / "mosquitto.pid"
    broker = MosquittoBroker({BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES},
                             workdir=workdir, extra_config=f"pid_file {pid_file}",
                             template=LEGACY_TEMPLATE)
    broker.pid_file = pid_file  # type: ignore[attr-defined]
    try:
        broker.start()
        wait_until(pid_file.exists, message="broker pid file")
        yield broker
    finally:
        broker.cleanup()


def _env(broker: MosquittoBroker) -> dict[str, str]:
    return {
        "NX_BROKER_PASSWORD_FILE": str(broker.password_file),
        "NX_BROKER_PID_FILE": str(broker.pid_file),  # type: ignore[attr-defined]
        "NX_MQTT_HOST": broker.host,
        "NX_MQTT_PORT": str(broker.port),
        "NX_MQTT_USERNAME": BACKEND_USER,
        "NX_MQTT_PASSWORD": BACKEND_PASSWORD,
    }


def _connects(broker: MosquittoBroker, user: str, password: str) -> bool:
    probe = Probe(broker.host, broker.port, user, password)
    code = probe.connect()
    probe.close()
    return not code.is_failure


def test_added_machine_connects_with_printed_config(broker: MosquittoBroker) -> None:
    result = nx_backend("device", "add", "site-042", "--lat", "47.6", "--lon", "-122.3",
                        "--name", "Pioneer Square", "--no-register", env=_env(broker))
    assert result.returncode == 0, result.stderr
    config = tomllib.loads(result.stdout)
    assert config["machine_id"] == config["mqtt_username"] == "site-042"
    assert config["mqtt_port"] == broker.port
    assert "broker (pid" in result.stderr  # reloaded through the pid file
    assert _connects(broker, "site-042", config["mqtt_password"])
    # The new machine is bound by the same ACL patterns as everyone else.
    probe = Probe(broker.host, broker.port, "site-042", config["mqtt_password"])
    probe.connect()
    try:
        ok = probe.publish("nx/v1/machines/site-042/events", b"{}")
        refused = probe.publish("nx/v1/machines/test-001/events", b"{}")
    finally:
        probe.close()
    assert ok is not None
    assert not ok.is_failure
    assert refused is not None
    assert refused.value == 135


def test_add_refuses_duplicates_and_service_names(broker: MosquittoBroker) -> None:
    env = _env(broker)
    args = ["--lat", "1", "--lon", "1", "--name", "x", "--no-register"]
    duplicate = nx_backend("device", "add", "test-001", *args, env=env)
    assert duplicate.returncode == 1
    assert "already has a broker credential" in duplicate.stderr
    service = nx_backend("device", "add", "nx-backend", *args, env=env)
    assert service.returncode == 1
    assert "kept for services" in service.stderr
    bad = nx_backend("device", "add", "Bad/Id", *args, env=env)
    assert bad.returncode == 1
    assert "invalid machine id" in bad.stderr
    # None of the refusals touched the existing credentials.
    assert _connects(broker, "test-001", TEST_MACHINES["test-001"])


def test_revoked_machine_is_dropped_and_cannot_reconnect(broker: MosquittoBroker) -> None:
    victim, bystander = "test-003", "test-004"
    connected = Probe(broker.host, broker.port, victim, TEST_MACHINES[victim])
    assert not connected.connect().is_failure
    other = Probe(broker.host, broker.port, bystander, TEST_MACHINES[bystander])
    assert not other.connect().is_failure
    try:
        result = nx_backend("device", "revoke", victim, env=_env(broker))
        assert result.returncode == 0, result.stderr
        assert "session of test-003 ended" in result.stderr
        # Mosquitto re-checks connected clients' passwords on SIGHUP and drops
        # those no longer valid: the stolen Pi loses its session at once.
        wait_until(connected.disconnected.is_set, message="revoked client disconnected")
        assert not _connects(broker, victim, TEST_MACHINES[victim])
        # Everyone else is untouched.
        assert not other.disconnected.is_set()
        code = other.publish(f"nx/v1/machines/{bystander}/events", b"{}")
        assert code is not None
        assert not code.is_failure
    finally:
        connected.close()
        other.close()
    again = nx_backend("device", "revoke", victim, env=_env(broker))
    assert again.returncode == 1
    assert "nothing" in again.stderr or "no password" in again.stderr


def test_rotated_password_replaces_the_old_one(broker: MosquittoBroker) -> None:
    machine = "test-005"
    result = nx_backend("device", "rotate", machine, env=_env(broker))
    assert result.returncode == 0, result.stderr
    new_password = tomllib.loads(result.stdout)["mqtt_password"]
    assert new_password != TEST_MACHINES[machine]
    assert _connects(broker, machine, new_password)
    assert not _connects(broker, machine, TEST_MACHINES[machine])


def test_revoke_with_a_stale_pid_file_says_so(broker: MosquittoBroker, tmp_path: Path) -> None:
    stale = tmp_path / "stale.pid"
    stale.write_text("999999\n")
    env = {**_env(broker), "NX_BROKER_PID_FILE": str(stale)}
    result = nx_backend("device", "revoke", "test-006", env=env)
    assert result.returncode == 1
    assert "no broker runs with pid 999999" in result.stderr


def test_service_password_is_created_for_service_names_only(broker: MosquittoBroker) -> None:
    env = _env(broker)
    created = nx_backend("device", "service-password", "nx-api", env=env)
    assert created.returncode == 0, created.stderr
    assert _connects(broker, "nx-api", created.stdout.strip())
    refused = nx_backend("device", "service-password", "site-001", env=env)
    assert refused.returncode == 1
    assert "service accounts start with" in refused.stderr


def test_add_registers_the_machine_and_revoke_deactivates_it(
        broker: MosquittoBroker, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'naloxnet.db'}"
    migrate(url)
    env = {**_env(broker), "NX_DATABASE_URL": url}
    added = nx_backend("device", "add", "site-077", "--lat", "47.61", "--lon", "-122.33",
                       "--name", "Harbor Clinic", "--site", "clinic", env=env)
    assert added.returncode == 0, added.stderr
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            machine = crud.get_machine(session=session, machine_id="site-077")
            assert machine is not None
            assert (machine.name, machine.lat, machine.lon) == ("Harbor Clinic", 47.61, -122.33)
            assert machine.active
        revoked = nx_backend("device", "revoke", "site-077", "--deactivate", env=env)
        assert revoked.returncode == 0, revoked.stderr
        with Session(engine) as session:
            machine = crud.get_machine(session=session, machine_id="site-077")
            assert machine is not None
            assert not machine.active
    finally:
        engine.dispose()


def test_add_against_an_unmigrated_database_says_what_to_run(
        broker: MosquittoBroker, tmp_path: Path) -> None:
    env = {**_env(broker), "NX_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = nx_backend("device", "add", "site-078", "--lat", "1", "--lon", "1",
                        "--name", "x", env=env)
    assert result.returncode == 1
    assert "nx-backend migrate" in result.stderr
    # Nothing half-done: no credential was created for the unregistered machine.
    assert "site-078" not in broker.password_file.read_text()


def test_out_file_list_and_missing_settings(broker: MosquittoBroker, tmp_path: Path) -> None:
    env = _env(broker)
    out = tmp_path / "pi" / "agent.toml"
    added = nx_backend("device", "add", "site-090", "--lat", "1", "--lon", "1", "--name", "x",
                       "--no-register", "--out", str(out), env=env)
    assert added.returncode == 0, added.stderr
    assert added.stdout == ""  # the secret went to the file only
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert tomllib.loads(out.read_text())["machine_id"] == "site-090"
    listed = nx_backend("device", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "site-090" in listed.stdout.split()
    assert BACKEND_USER in listed.stdout.split()
    bare = {k: v for k, v in env.items() if k != "NX_BROKER_PASSWORD_FILE"}
    missing = nx_backend("device", "add", "site-091", "--lat", "1", "--lon", "1",
                         "--name", "x", "--no-register", env=bare)
    assert missing.returncode == 1
    assert "NX_BROKER_PASSWORD_FILE" in missing.stderr
