"""Helpers for the agent tests: a collecting subscriber and test-sized settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware_agent.config import AgentSettings
from simulators.broker import MosquittoBroker
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES
from tests.waiting import DEFAULT_TIMEOUT_S, wait_until

__all__ = ["MACHINE", "AgentProcess", "Collector", "agent_environment", "agent_settings",
           "command_result", "run_agent_cli", "send_command", "wait_until", "write_config"]

MACHINE = "test-001"
UPWARD_TOPICS = tuple(
    f"nx/v1/machines/+/{channel}"
    for channel in ("status", "events", "telemetry", "stock", "cmd/result")
)


def agent_settings(broker: MosquittoBroker, data_dir: Path, port: str,
                   machine_id: str = MACHINE, **overrides: Any) -> AgentSettings:
    """Settings for an agent on ``port`` talking to ``broker``, with test-sized timings."""
    values: dict[str, Any] = {
        "machine_id": machine_id,
        "serial_port": port,
        "mqtt_host": broker.host,
        "mqtt_port": broker.port,
        "mqtt_password": TEST_MACHINES[machine_id],
        "data_dir": data_dir,
        "heartbeat_s": 60.0,
        "read_timeout_s": 0.05,
        "reopen_s": 0.2,
        "command_timeout_s": 5.0,
        "link_ack_timeout_s": 0.3,
        "link_down_retry_s": 0.3,
        "reconnect_min_s": 1,
        "reconnect_max_s": 2,
    }
    values.update(overrides)
    return AgentSettings(**values)


class Collector:
    """A persistent MQTT v5 subscriber as the backend user that keeps what arrives."""

    def __init__(self, broker: MosquittoBroker, client_id: str = "test-collector",
                 topics: tuple[str, ...] = UPWARD_TOPICS) -> None:
        self._lock = threading.Lock()
        self.received: list[tuple[str, bytes, bool]] = []
        self._subscribed = threading.Event()
        self._topics = topics
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(BACKEND_USER, BACKEND_PASSWORD)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        wait_until(self._subscribed.is_set, what="collector subscription")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any) -> None:
        for topic in self._topics:
            client.subscribe(topic, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: Any,
                      props: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, suffix: str) -> list[dict[str, Any]]:
        """Return the decoded payloads received on topics ending in ``/suffix``."""
        with self._lock:
            items = list(self.received)
        return [json.loads(p) for t, p, _ in items if t.endswith("/" + suffix)]

    def event_ids(self, kind: str | None = None) -> list[str]:
        """Return every event id received (duplicates included), optionally of one kind."""
        return [e["event_id"] for e in self.on("events") if kind is None or e["kind"] == kind]

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def send_command(collector: Collector, payload: bytes | dict[str, object],
                 machine_id: str = MACHINE) -> None:
    """Publish a command to ``machine_id``'s ``cmd`` topic as the backend; wait for the PUBACK."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    info = collector.client.publish(f"nx/v1/machines/{machine_id}/cmd", raw, qos=1)
    info.wait_for_publish(10)
    assert info.rc == mqtt.MQTT_ERR_SUCCESS


def command_result(collector: Collector, command_id: str,
                   timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """Wait for the ``cmd/result`` of ``command_id`` and return it."""
    def found() -> bool:
        return any(r["command_id"] == command_id for r in collector.on("cmd/result"))

    wait_until(found, timeout=timeout, what=f"result of {command_id}")
    return next(r for r in collector.on("cmd/result") if r["command_id"] == command_id)


def write_config(path: Path, broker: MosquittoBroker, data_dir: Path, port: str,
                 extra: tuple[str, ...] = ()) -> Path:
    """Write a TOML config for ``nx-agent run`` with test-sized timings (plus ``extra`` lines)."""
    path.write_text(
        "\n".join([
            f'machine_id = "{MACHINE}"',
            f'serial_port = "{port}"',
            f'mqtt_host = "{broker.host}"',
            f"mqtt_port = {broker.port}",
            f'mqtt_password = "{TEST_MACHINES[MACHINE]}"',
            f'data_dir = "{data_dir}"',
            "read_timeout_s = 0.05",
            "link_ack_timeout_s = 0.3",
            "link_down_retry_s = 0.3",
            "reconnect_min_s = 1",
            "reconnect_max_s = 2",
            *extra,
        ]) + "\n",
        encoding="utf-8",
    )
    return path


def agent_environment(**variables: str) -> dict[str, str]:
    """This process's environment without NX_AGENT_ variables, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NX_AGENT_")}
    env.update(variables)
    return env


def run_agent_cli(*args: str, env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess[str]:
    """Run ``nx-agent ARGS`` to its end in a child process (``env``: ours, no NX_AGENT_)."""
    return subprocess.run([sys.executable, "-m", "firmware_agent.cli", *args],
                          capture_output=True, text=True, timeout=120,
                          env=agent_environment() if env is None else env)


class AgentProcess:
    """``nx-agent run`` as a child process, logging to a file."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_agent.cli", "run", "--config", str(config)],
            stdout=self._log, stderr=subprocess.STDOUT, env=agent_environment(),
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def terminate(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(30)
        self._log.close()
        return code
