"""Processes and fleets for the reliability tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from simulators.broker import MosquittoBroker
from tests.backend.helpers import WAIT_S, publish_vends, wait_until
from tests.conftest import BACKEND_PASSWORD

REPO = Path(__file__).resolve().parents[2]


class Fleet:
    """Machines publishing vend events concurrently, each paced by PUBACKs."""

    def __init__(self, broker: MosquittoBroker, machines: Mapping[str, str], events: int,
                 first_seq: int = 1) -> None:
        self.broker = broker
        self.machines = dict(machines)
        self.events = events
        self.first_seq = first_seq
        self.errors: list[BaseException] = []
        self.finished_at = 0.0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(m,), daemon=True)
                        for m in self.machines]

    def _run(self, machine_id: str) -> None:
        try:
            publish_vends(self.broker, machine_id,
                          range(self.first_seq, self.first_seq + self.events),
                          password=self.machines[machine_id])
            with self._lock:
                self.finished_at = max(self.finished_at, time.time())
        except BaseException as exc:  # surfaced by join()
            self.errors.append(exc)

    def start(self) -> None:
        """Start every machine's publisher thread."""
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float = WAIT_S * 2) -> None:
        """Wait for every machine to have all its events acknowledged by the broker."""
        for thread in self.threads:
            thread.join(timeout)
        assert not self.errors, self.errors[:3]
        assert not any(t.is_alive() for t in self.threads), "a publisher did not finish"


class IngestProcess:
    """``nx-backend ingest`` in a child process, watched through its log."""

    def __init__(self, url: str, broker: MosquittoBroker, worker: int = 0,
                 extra_env: Mapping[str, str] | None = None) -> None:
        env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url,
               "NX_MQTT_HOST": broker.host, "NX_MQTT_PORT": str(broker.port),
               "NX_MQTT_PASSWORD": BACKEND_PASSWORD, "NX_INGEST_RECONNECT_MIN_S": "1",
               "NX_INGEST_RECONNECT_MAX_S": "2", **(extra_env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from backend.cli import main; main()", "ingest",
             "--worker", str(worker)],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_subscribed(self) -> None:
        """Wait until the worker's subscriptions were granted."""
        self._wait_line(lambda line: "subscribed to" in line, "ingest subscription")

    def _wait_line(self, match: Callable[[str], bool], what: str) -> None:
        wait_until(lambda: any(match(line) for line in self.lines)
                   or self.process.poll() is not None, what=what)
        assert self.process.poll() is None, "".join(self.lines)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(WAIT_S)

    def terminate(self) -> None:
        """Stop cleanly and check that nothing was logged at ERROR."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(WAIT_S)
        self._reader.join(WAIT_S)
        errors = [line for line in self.lines if " ERROR " in line]
        assert not errors, "".join(errors)


class BackendProcess(IngestProcess):
    """Any ``nx-backend`` command (``serve --no-ingest``, ``ingest --worker N``) in a child."""

    def __init__(self, url: str, broker: MosquittoBroker, args: list[str],
                 extra_env: Mapping[str, str] | None = None) -> None:
        env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url,
               "NX_MQTT_HOST": broker.host, "NX_MQTT_PORT": str(broker.port),
               "NX_MQTT_PASSWORD": BACKEND_PASSWORD, "NX_INGEST_RECONNECT_MIN_S": "1",
               "NX_INGEST_RECONNECT_MAX_S": "2", **(extra_env or {})}
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from backend.cli import main; main()", *args],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The child's process id (the run log names holders ``host:pid``)."""
        return self.process.pid

    def wait_line(self, text: str) -> None:
        """Wait until the child logged a line containing ``text``."""
        self._wait_line(lambda line: text in line, repr(text))

    def logged(self, text: str) -> bool:
        """Say whether the child logged a line containing ``text``."""
        return any(text in line for line in self.lines)
