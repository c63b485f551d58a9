"""A machine provisioned with ``nx-backend device add`` runs the real agent against the broker.

The printed TOML goes to the Pi unchanged except for what only the Pi knows
(its serial port, its data directory, where its certificate files were
copied); the agent then reaches the broker as itself over each mode.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_agent.agent import Agent
from firmware_agent.config import AgentSettings
from firmware_agent.nxlink.link import LinkTiming
from simulators.broker import MosquittoBroker
from simulators.virtual_controller import VirtualController
from tests.broker.cli_runner import nx_backend
from tests.broker.helpers import Probe, wait_until
from tests.broker.production import ProductionBroker, start_production_broker
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES

SLOTS = {1: ("naloxone-nasal-4mg", 8, 10)}
FAST_LINK = LinkTiming(ack_timeout_s=0.3, link_down_retry_s=0.3)
PI_ONLY = {  # what the Pi adds to the printed file, with test-sized timings
    "read_timeout_s": 0.05, "reopen_s": 0.2, "link_ack_timeout_s": 0.3,
    "link_down_retry_s": 0.3, "reconnect_min_s": 1, "reconnect_max_s": 2,
}


@pytest.fixture
def controller() -> Iterator[VirtualController]:
    """A virtual controller on a pty."""
    with VirtualController(SLOTS, timing=FAST_LINK) as vc:
        yield vc


def _settings(printed: str, controller: VirtualController, data_dir: Path,
              **paths: str) -> AgentSettings:
    values: dict[str, Any] = tomllib.loads(printed)
    values.update(PI_ONLY, serial_port=controller.port, data_dir=data_dir, **paths)
    return AgentSettings(**values)


def _vend_arrives(agent: Agent, controller: VirtualController, backend: Probe,
                  machine_id: str) -> None:
    [code] = backend.subscribe(f"nx/v1/machines/{machine_id}/events")
    assert code.value == 1
    agent.start()
    try:
        controller.vend(1)
        wait_until(lambda: any(json.loads(m.payload).get("kind") == "vend"
                               for m in list(backend.messages.queue)),
                   timeout=30, message=f"a vend event from {machine_id}")
    finally:
        agent.stop()
    vends = [json.loads(m.payload) for m in list(backend.messages.queue)]
    vends = [e for e in vends if e.get("kind") == "vend"]
    assert [e["machine_id"] for e in vends] == [machine_id]


def test_password_machine_runs_from_printed_config(
        mosquitto: MosquittoBroker, controller: VirtualController, tmp_path: Path) -> None:
    admin, admin_password = mosquitto.dynsec_admin
    env = {"NX_BROKER_DYNSEC_ADMIN": admin, "NX_BROKER_DYNSEC_ADMIN_PASSWORD": admin_password,
           "NX_MQTT_HOST": mosquitto.host, "NX_MQTT_PORT": str(mosquitto.port)}
    result = nx_backend("device", "add", "site-pw-01", "--lat", "1", "--lon", "1",
                        "--name", "x", "--no-register", env=env)
    assert result.returncode == 0, result.stderr
    backend = Probe(mosquitto.host, mosquitto.port, BACKEND_USER, BACKEND_PASSWORD)
    assert not backend.connect().is_failure
    try:
        agent = Agent(_settings(result.stdout, controller, tmp_path / "agent"))
        _vend_arrives(agent, controller, backend, "site-pw-01")
    finally:
        backend.close()


@pytest.fixture
def prod() -> Iterator[ProductionBroker]:
    """The production configuration, running."""
    running = start_production_broker({BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES})
    try:
        yield running
    finally:
        running.broker.cleanup()
        shutil.rmtree(running.ca_dir.parent, ignore_errors=True)


def test_certificate_machine_runs_from_printed_config(
        prod: ProductionBroker, controller: VirtualController, tmp_path: Path) -> None:
    pi_dir = tmp_path / "etc-nx-agent"  # stands in for /etc/nx-agent on the Pi
    admin, admin_password = prod.broker.dynsec_admin
    env = {"NX_BROKER_CA_DIR": str(prod.ca_dir), "NX_BROKER_DYNSEC_ADMIN": admin,
           "NX_BROKER_DYNSEC_ADMIN_PASSWORD": admin_password,
           "NX_MQTT_HOST": prod.broker.host, "NX_MQTT_PORT": str(prod.loopback_port)}
    result = nx_backend("device", "add", "site-tls-01", "--lat", "1", "--lon", "1",
                        "--name", "x", "--cert", "--no-register", "--cert-out", str(pi_dir),
                        "--broker-host", "127.0.0.1", "--broker-port", str(prod.machine_port),
                        env=env)
    assert result.returncode == 0, result.stderr
    printed = tomllib.loads(result.stdout)
    assert "mqtt_password" not in printed
    assert printed["tls_cert_file"] == "/etc/nx-agent/site-tls-01.crt"
    backend = Probe(prod.broker.host, prod.loopback_port, BACKEND_USER, BACKEND_PASSWORD)
    assert not backend.connect().is_failure
    try:
        agent = Agent(_settings(
            result.stdout, controller, tmp_path / "agent",
            tls_ca_file=str(pi_dir / "ca.crt"),
            tls_cert_file=str(pi_dir / "site-tls-01.crt"),
            tls_key_file=str(pi_dir / "site-tls-01.key"),
        ))
        _vend_arrives(agent, controller, backend, "site-tls-01")
    finally:
        backend.close()
