"""The dynamic-security plugin, which every shipped config uses: run-time administration."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.provisioning.dynsec import (
    DynsecAdmin,
    DynsecError,
    add_machine_commands,
    backend_commands,
    initial_config,
    remove_machine_commands,
)
from simulators.broker import MosquittoBroker
from tests.broker.cli_runner import nx_backend
from tests.broker.helpers import Probe, wait_until

ADMIN, ADMIN_PASSWORD = "nx-dynsec-admin", "admin-test-password"
BACKEND, BACKEND_PW = "nx-backend", "backend-dynsec-password"
GROUP = "nx-ingest-7f3a"
MACHINES = {"test-001": "pw-dyn-001", "test-002": "pw-dyn-002"}
A, B = "test-001", "test-002"
NOT_AUTHORIZED = 135


def _dynsec_broker(prefix: str) -> tuple[Path, MosquittoBroker]:
    """A broker from the shipped (plugin) config with no users yet, not started."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)  # noqa: S103 - the broker's user must traverse it
    return root, MosquittoBroker({}, workdir=root / "broker")


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A broker with the dynamic-security plugin, a backend user and two machines."""
    root, broker = _dynsec_broker("nx-dynsec-")
    state = broker.data_dir / "dynamic-security.json"
    state.write_text(json.dumps(initial_config(ADMIN, ADMIN_PASSWORD,
                                               backend=(BACKEND, BACKEND_PW, GROUP))),
                     encoding="utf-8")
    if os.geteuid() == 0:  # the plugin rewrites its file as the broker's user
        entry = pwd.getpwnam("mosquitto")
        os.chown(state, entry.pw_uid, entry.pw_gid)
    try:
        broker.start()
        with _admin(broker) as admin:
            # A second service added at run time, the way an operator would.
            admin.run(backend_commands("nx-backend-2", BACKEND_PW, GROUP, create_role=False))
            for machine_id, password in MACHINES.items():
                admin.run(add_machine_commands(machine_id, password))
        yield broker
    finally:
        broker.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def _admin(broker: MosquittoBroker) -> DynsecAdmin:
    return DynsecAdmin(host=broker.host, port=broker.port, username=ADMIN,
                       password=ADMIN_PASSWORD)


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    """Probes opened by a test, closed afterwards."""
    opened: list[Probe] = []
    yield opened
    for probe in opened:
        probe.close()


def _connected(broker: MosquittoBroker, probes: list[Probe], user: str, password: str,
               client_id: str = "") -> Probe:
    probe = Probe(broker.host, broker.port, user, password, client_id=client_id or user)
    probes.append(probe)
    code = probe.connect()
    assert not code.is_failure, f"{user}: {code}"
    return probe


def test_subscriptions_outside_the_grant_are_refused(broker: MosquittoBroker,
                                                     probes: list[Probe]) -> None:
    machine_a = _connected(broker, probes, A, MACHINES[A])
    for topic_filter in (f"nx/v1/machines/{B}/cmd", "nx/v1/machines/+/cmd", "#",
                         f"$share/{GROUP}/nx/v1/machines/+/events", "$SYS/#"):
        [code] = machine_a.subscribe(topic_filter)
        assert code.value == NOT_AUTHORIZED, f"{topic_filter}: {code}"
    [own] = machine_a.subscribe(f"nx/v1/machines/{A}/cmd")
    assert own.value == 1


@pytest.mark.parametrize("backend_user", [BACKEND, "nx-backend-2"])
def test_publishes_are_confined_and_shared_ingest_gets_everything(
        broker: MosquittoBroker, probes: list[Probe], backend_user: str) -> None:
    backend = _connected(broker, probes, backend_user, BACKEND_PW, client_id="nx-ingest-0")
    [share] = backend.subscribe(f"$share/{GROUP}/nx/v1/machines/+/events")
    assert share.value == 1
    machine_a = _connected(broker, probes, A, MACHINES[A])
    [refused] = machine_a.subscribe(f"$share/{GROUP}/nx/v1/machines/+/events")
    assert refused.value == NOT_AUTHORIZED  # so it cannot swallow the group's share
    forged = machine_a.publish(f"nx/v1/machines/{B}/events", b"forged")
    assert forged is not None
    assert forged.value == NOT_AUTHORIZED
    count = 20
    codes = machine_a.publish_many(f"nx/v1/machines/{A}/events",
                                   [str(n).encode() for n in range(count)])
    assert not any(code.is_failure for code in codes)
    received = backend.drain(count)
    assert sorted(int(m.payload) for m in received) == list(range(count))


def test_machine_is_pinned_to_its_client_id(broker: MosquittoBroker,
                                            probes: list[Probe]) -> None:
    impostor = Probe(broker.host, broker.port, A, MACHINES[A], client_id="nx-ingest-0")
    probes.append(impostor)
    assert impostor.connect().is_failure


def test_deleting_a_machine_disconnects_it_at_once(broker: MosquittoBroker,
                                                   probes: list[Probe]) -> None:
    machine_b = _connected(broker, probes, B, MACHINES[B])
    with _admin(broker) as admin:
        admin.run(remove_machine_commands(B))
    wait_until(machine_b.disconnected.is_set, message="deleted machine disconnected")
    machine_b.client.loop_stop()
    again = Probe(broker.host, broker.port, B, MACHINES[B], client_id=B)
    probes.append(again)
    assert again.connect().is_failure


def test_refused_commands_are_reported(broker: MosquittoBroker) -> None:
    with _admin(broker) as admin, pytest.raises(DynsecError, match="createClient"):
        admin.run(add_machine_commands(A, "again"))  # A exists already
    machine_cannot_administer = DynsecAdmin(host=broker.host, port=broker.port,
                                            username=A, password=MACHINES[A])
    with pytest.raises(DynsecError, match="cannot administer"):
        machine_cannot_administer.__enter__()


def test_nx_backend_device_add_and_revoke_through_the_plugin(
        broker: MosquittoBroker, probes: list[Probe]) -> None:
    env = {"NX_BROKER_DYNSEC_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "NX_MQTT_HOST": broker.host, "NX_MQTT_PORT": str(broker.port)}
    added = nx_backend("device", "add", "site-dyn-01", "--lat", "1", "--lon", "1",
                       "--name", "x", "--no-register", env=env)
    assert added.returncode == 0, added.stderr
    password = tomllib.loads(added.stdout)["mqtt_password"]
    machine = _connected(broker, probes, "site-dyn-01", password)
    [own] = machine.subscribe("nx/v1/machines/site-dyn-01/cmd")
    assert own.value == 1
    [other] = machine.subscribe(f"nx/v1/machines/{A}/cmd")
    assert other.value == NOT_AUTHORIZED
    revoked = nx_backend("device", "revoke", "site-dyn-01", env=env)
    assert revoked.returncode == 0, revoked.stderr
    wait_until(machine.disconnected.is_set, message="revoked machine disconnected")
    machine.client.loop_stop()
    wrong_admin = nx_backend("device", "revoke", A,
                             env={**env, "NX_BROKER_DYNSEC_ADMIN_PASSWORD": "wrong"})
    assert wrong_admin.returncode == 1
    assert "dynamic-security plugin" in wrong_admin.stderr


def test_dynsec_init_bootstraps_a_broker(tmp_path: Path) -> None:
    root, broker = _dynsec_broker("nx-dynsec-init-")
    state = broker.dynsec_file
    state.unlink()  # the operator starts from nothing
    try:
        made = nx_backend("device", "dynsec-init", str(state), "--share-group", GROUP, env={})
        assert made.returncode == 0, made.stderr
        printed = dict(line.split("=", 1) for line in made.stdout.split())
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        again = nx_backend("device", "dynsec-init", str(state), env={})
        assert again.returncode == 1  # never overwrite the plugin's state
        broker.start()
        backend = Probe(broker.host, broker.port, "nx-backend", printed["NX_MQTT_PASSWORD"])
        try:
            assert not backend.connect().is_failure
            [code] = backend.subscribe(f"$share/{GROUP}/nx/v1/machines/+/events")
            assert code.value == 1
        finally:
            backend.close()
        with DynsecAdmin(host=broker.host, port=broker.port, username=ADMIN,
                         password=printed["NX_BROKER_DYNSEC_ADMIN_PASSWORD"]) as admin:
            admin.run(add_machine_commands("site-boot-1", "pw"))
    finally:
        broker.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def test_password_file_deployment_migrates_with_every_password_kept(tmp_path: Path) -> None:
    legacy = MosquittoBroker({BACKEND: BACKEND_PW, **MACHINES, "old-six": "x"},
                             workdir=tmp_path / "legacy")
    # One entry in the pre-PBKDF2 format the plugin cannot take over as it is.
    with legacy.password_file.open("a", encoding="utf-8") as handle:
        handle.write("old-six:$6$c2FsdA==$aGFzaA==\n")
    root, broker = _dynsec_broker("nx-dynsec-migrate-")
    broker.dynsec_file.unlink()
    try:
        made = nx_backend("device", "dynsec-init", str(broker.dynsec_file), "--share-group",
                          GROUP, "--from-password-file", str(legacy.password_file), env={})
        assert made.returncode == 0, made.stderr
        assert "not migrated: old-six" in made.stderr
        printed = dict(line.split("=", 1) for line in made.stdout.split())
        assert "NX_MQTT_PASSWORD" not in printed  # the backend keeps its password
        broker.start()
        backend = Probe(broker.host, broker.port, BACKEND, BACKEND_PW)
        machine = Probe(broker.host, broker.port, A, MACHINES[A])
        impostor = Probe(broker.host, broker.port, A, MACHINES[A], client_id=B)
        try:
            assert not backend.connect().is_failure
            assert not machine.connect().is_failure  # its old password, no new TOML
            assert impostor.connect().is_failure  # now pinned to its own client id
            [refused] = machine.subscribe(f"$share/{GROUP}/nx/v1/machines/+/events")
            assert refused.value == NOT_AUTHORIZED
            [granted] = backend.subscribe(f"$share/{GROUP}/nx/v1/machines/+/events")
            assert granted.value == 1
            machine.publish(f"nx/v1/machines/{A}/events", b"after-migration")
            [message] = backend.drain(1)
            assert message.payload == b"after-migration"
        finally:
            for probe in (backend, machine, impostor):
                probe.close()
    finally:
        broker.cleanup()
        legacy.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def test_rotate_and_service_password_through_the_plugin(broker: MosquittoBroker,
                                                        probes: list[Probe]) -> None:
    env = {"NX_BROKER_DYNSEC_ADMIN_PASSWORD": ADMIN_PASSWORD, "NX_INGEST_SHARE_GROUP": GROUP,
           "NX_MQTT_HOST": broker.host, "NX_MQTT_PORT": str(broker.port)}
    rotated = nx_backend("device", "rotate", A, env=env)
    assert rotated.returncode == 0, rotated.stderr
    new_password = tomllib.loads(rotated.stdout)["mqtt_password"]
    old = Probe(broker.host, broker.port, A, MACHINES[A])
    probes.append(old)
    assert old.connect().is_failure
    _connected(broker, probes, A, new_password)

    made = nx_backend("device", "service-password", "nx-ingest-2", env=env)
    assert made.returncode == 0, made.stderr
    service = _connected(broker, probes, "nx-ingest-2", made.stdout.strip(),
                         client_id="nx-ingest-2")
    [share] = service.subscribe(f"$share/{GROUP}/nx/v1/machines/+/events")
    assert share.value == 1
    again = nx_backend("device", "service-password", "nx-ingest-2", "--rotate", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() != made.stdout.strip()
    _connected(broker, probes, "nx-ingest-2", again.stdout.strip(), client_id="nx-ingest-2b")


def test_list_shows_the_plugins_clients(broker: MosquittoBroker) -> None:
    env = {"NX_BROKER_DYNSEC_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "NX_MQTT_HOST": broker.host, "NX_MQTT_PORT": str(broker.port)}
    listed = nx_backend("device", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == sorted([ADMIN, BACKEND, "nx-backend-2", *MACHINES])
