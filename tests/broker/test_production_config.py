"""broker_config/mosquitto.conf runs, and enforces mutual TLS, identities and client ids."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.provisioning import ca_store
from tests.broker.cli_runner import nx_backend
from tests.broker.helpers import Probe, TlsFiles, wait_saved, wait_until
from tests.broker.production import ProductionBroker, start_production_broker
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES

NOT_AUTHORIZED = 135


@pytest.fixture
def prod() -> Iterator[ProductionBroker]:
    """The production configuration, running."""
    running = start_production_broker({BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES})
    try:
        yield running
    finally:
        running.broker.cleanup()
        shutil.rmtree(running.ca_dir.parent, ignore_errors=True)


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    """Probes opened by a test, closed afterwards."""
    opened: list[Probe] = []
    yield opened
    for probe in opened:
        probe.close()


def _machine_tls(prod: ProductionBroker, machine_id: str) -> TlsFiles:
    bundle = ca_store.issue_client(prod.ca_dir, machine_id, prod.clients_dir / machine_id)
    return TlsFiles(str(prod.ca_dir / "ca.crt"), str(bundle.cert_file), str(bundle.key_file))


def _probe(prod: ProductionBroker, probes: list[Probe], port: int, **kwargs: object) -> Probe:
    kwargs.setdefault("username", None)
    kwargs.setdefault("password", None)
    probe = Probe(prod.broker.host, port, **kwargs)  # type: ignore[arg-type]
    probes.append(probe)
    return probe


def _refused(probe: Probe) -> bool:
    """Return whether the broker refused the connection, at TLS or at CONNACK."""
    try:
        code = probe.connect()
    except (ssl.SSLError, OSError):
        return True  # TLS 1.2 fails the handshake itself
    return code.is_failure  # TLS 1.3 checks the client certificate after the handshake


def test_machine_with_deployment_certificate_connects_as_itself(
        prod: ProductionBroker, probes: list[Probe]) -> None:
    probe = _probe(prod, probes, prod.machine_port, tls=_machine_tls(prod, "test-001"))
    assert not probe.connect().is_failure
    own = probe.publish("nx/v1/machines/test-001/events", b"{}")
    other = probe.publish("nx/v1/machines/test-002/events", b"{}")
    assert own is not None
    assert not own.is_failure
    # The certificate's CN is its username: the ACL confines it like a password user.
    assert other is not None
    assert other.value == NOT_AUTHORIZED


def test_machine_listener_refuses_clients_without_a_certificate(
        prod: ProductionBroker, probes: list[Probe]) -> None:
    ca_only = TlsFiles(str(prod.ca_dir / "ca.crt"))
    probe = _probe(prod, probes, prod.machine_port, username="test-001",
                   password=TEST_MACHINES["test-001"], tls=ca_only)
    assert _refused(probe)


def test_machine_listener_refuses_certificates_from_another_ca(
        prod: ProductionBroker, probes: list[Probe], tmp_path: Path) -> None:
    rogue_ca = tmp_path / "rogue-ca"
    ca_store.init_ca(rogue_ca, "Someone else's CA")
    bundle = ca_store.issue_client(rogue_ca, "test-001", tmp_path / "rogue")
    tls = TlsFiles(str(prod.ca_dir / "ca.crt"), str(bundle.cert_file), str(bundle.key_file))
    assert _refused(_probe(prod, probes, prod.machine_port, tls=tls))


def test_plain_tcp_to_the_machine_listener_is_refused(
        prod: ProductionBroker, probes: list[Probe]) -> None:
    probe = _probe(prod, probes, prod.machine_port, username="test-001",
                   password=TEST_MACHINES["test-001"])
    assert _refused(probe)


def test_service_listener_needs_tls_and_the_right_password(
        prod: ProductionBroker, probes: list[Probe]) -> None:
    ca_only = TlsFiles(str(prod.ca_dir / "ca.crt"))
    good = _probe(prod, probes, prod.service_tls_port, username=BACKEND_USER,
                  password=BACKEND_PASSWORD, tls=ca_only)
    assert not good.connect().is_failure
    bad = _probe(prod, probes, prod.service_tls_port, username=BACKEND_USER,
                 password="wrong", tls=ca_only)
    assert _refused(bad)
    anonymous = _probe(prod, probes, prod.service_tls_port, tls=ca_only)
    assert _refused(anonymous)


def test_machine_cannot_take_over_a_service_client_id(
        prod: ProductionBroker, probes: list[Probe]) -> None:
    worker = _probe(prod, probes, prod.loopback_port, username=BACKEND_USER,
                    password=BACKEND_PASSWORD, client_id="nx-ingest-0")
    assert not worker.connect().is_failure
    intruder = _probe(prod, probes, prod.machine_port, tls=_machine_tls(prod, "test-002"),
                      client_id="nx-ingest-0")
    assert not intruder.connect().is_failure
    # Its client id was replaced by its username, so the worker keeps its
    # session: a publish through the worker still completes.
    code = worker.publish("nx/v1/machines/test-002/cmd", b"{}")
    assert code is not None
    assert not code.is_failure
    assert not worker.disconnected.is_set()


def test_revoked_certificate_is_refused_after_reload(
        prod: ProductionBroker, probes: list[Probe]) -> None:
    tls = _machine_tls(prod, "test-003")
    first = _probe(prod, probes, prod.machine_port, tls=tls)
    assert not first.connect().is_failure
    first.close()
    assert ca_store.revoke_client(prod.ca_dir, "test-003")
    ca_store.export_crl(prod.ca_dir, prod.crl_file)
    prod.broker.reload()
    # The reload is asynchronous; retry until the CRL is in force.
    def refused_now() -> bool:
        return _refused(_probe(prod, probes, prod.machine_port, tls=tls))
    wait_until(refused_now, message="revoked certificate refused")
    # Another machine's certificate still works.
    other = _probe(prod, probes, prod.machine_port, tls=_machine_tls(prod, "test-004"))
    assert not other.connect().is_failure


def test_device_revoke_ends_a_live_certificate_session(
        prod: ProductionBroker, probes: list[Probe]) -> None:
    tls = _machine_tls(prod, "test-005")
    live = _probe(prod, probes, prod.machine_port, tls=tls)
    assert not live.connect().is_failure
    env = {
        "NX_BROKER_CA_DIR": str(prod.ca_dir),
        "NX_BROKER_CRL_FILE": str(prod.crl_file),
        "NX_BROKER_DYNSEC_ADMIN": prod.broker.dynsec_admin[0],
        "NX_BROKER_DYNSEC_ADMIN_PASSWORD": prod.broker.dynsec_admin[1],
        "NX_BROKER_PID_FILE": str(prod.broker.data_dir / "mosquitto.pid"),
        "NX_MQTT_HOST": prod.broker.host,
        "NX_MQTT_PORT": str(prod.loopback_port),
        "NX_MQTT_USERNAME": BACKEND_USER,
        "NX_MQTT_PASSWORD": BACKEND_PASSWORD,
    }
    result = nx_backend("device", "revoke", "test-005", env=env)
    assert result.returncode == 0, result.stderr
    assert "certificate(s) of test-005" in result.stderr
    assert f"CRL copied to {prod.crl_file}" in result.stderr
    # A CRL reload alone leaves a connected certificate client connected;
    # deleting its client in the plugin ends it, and the CRL refuses it after.
    wait_until(live.disconnected.is_set, message="revoked machine disconnected")
    live.client.loop_stop()  # stop paho retrying in the background
    assert _refused(_probe(prod, probes, prod.machine_port, tls=tls))


def test_production_store_keeps_acknowledged_messages_across_kill_9(
        prod: ProductionBroker) -> None:
    count = 200
    login = (prod.broker.host, prod.loopback_port, BACKEND_USER, BACKEND_PASSWORD)
    ingest = Probe(*login, client_id="nx-ingest-prod", clean_start=False,
                   session_expiry_s=3600)
    assert not ingest.connect().is_failure
    ingest.subscribe("nx/v1/machines/+/events")
    ingest.close()
    machine = Probe(prod.broker.host, prod.machine_port, None, None,
                    tls=_machine_tls(prod, "test-006"))
    assert not machine.connect().is_failure
    codes = machine.publish_many("nx/v1/machines/test-006/events",
                                 [f"{n:06d}".encode() for n in range(count)])
    machine.close()
    assert not any(code.is_failure for code in codes)
    wait_saved(prod.broker.data_dir, f"{count - 1:06d}".encode())
    prod.broker.kill()
    prod.broker.start()
    ingest = Probe(*login, client_id="nx-ingest-prod", clean_start=False,
                   session_expiry_s=3600)
    assert not ingest.connect().is_failure
    try:
        received = ingest.drain(count, timeout=60)
    finally:
        ingest.close()
    assert sorted(int(m.payload) for m in received) == list(range(count))
