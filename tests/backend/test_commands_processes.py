"""Commands that arrive: the real agent, Mosquitto and ``nx-backend serve``, each killed.

The agent is killed, then the backend, while commands are pending and being
resent; both come back. Each command must take effect exactly once (the
virtual controller saw its frame once, one result is stored) and one whose
lifetime ran out while the agent was away shows ``expired`` and never
reaches the controller (the broker drops queued copies at the MQTT v5
message expiry).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.models import CommandResultRecord
from simulators.broker import MosquittoBroker, free_port
from simulators.virtual_controller import VirtualController
from tests.agent.helpers import AgentProcess, Collector, write_config
from tests.backend.conftest import bearer, make_token, register
from tests.backend.helpers import fresh
from tests.backend.procs import REPO
from tests.conftest import BACKEND_PASSWORD
from tests.waiting import wait_until

MACHINE = "test-001"
BASE = f"/api/v1/machines/{MACHINE}/commands"
SHORT_LIFETIME_S = 3


class Backend:
    """``nx-backend serve`` (API, ingest worker 0, command resender) in a child process."""

    def __init__(self, url: str, broker: MosquittoBroker, log_path: Path) -> None:
        port = free_port()
        env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url,
               "NX_MQTT_HOST": broker.host, "NX_MQTT_PORT": str(broker.port),
               "NX_MQTT_PASSWORD": BACKEND_PASSWORD, "NX_COMMANDS_RESEND_S": "1",
               "NX_COMMANDS_POLL_S": "0.1",
               # In-process writer: one interpreter less to start on a busy machine.
               "NX_INGEST_WRITER_PROCESS": "false"}
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from backend.cli import main; main()", "serve",
             "--port", str(port), "--no-hotspots", "--no-notify"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.base_url = f"http://127.0.0.1:{port}"

    def wait_up(self) -> None:
        def up() -> bool:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                return httpx.get(f"{self.base_url}/healthz").status_code == 200
            except httpx.TransportError:
                return False
        wait_until(up, what="the API")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(30)
        self._log.close()


def _authorise(http: httpx.Client, seconds: int, lifetime_s: int = 120) -> str:
    """Send an AUTH for slot 1; ``seconds`` (its AUTH field) tells the commands apart."""
    command_id = f"auth-{seconds}"
    made = http.post(BASE, json={"kind": "authorize_vend", "slot": 1, "ttl_s": seconds,
                                 "command_id": command_id, "expires_in_s": lifetime_s})
    assert made.status_code == 201, made.text
    return command_id


def _commands(http: httpx.Client) -> dict[str, dict[str, object]]:
    return {c["command_id"]: c for c in http.get(BASE).json()["data"]}


def _auth_frames(vc: VirtualController) -> Counter[str]:
    return Counter(f"auth-{f.fields[1]}" for f in list(vc.received) if f.type == "AUTH")


def test_commands_take_effect_once_across_agent_and_backend_kills(
    migrated_url: str, session: Session, mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    register(session, MACHINE)
    headers = bearer(make_token(migrated_url, "admin"))
    collector = Collector(mosquitto)
    vc = VirtualController({1: ("naloxone-nasal-4mg", 5, 10)}).start()
    config = write_config(tmp_path / "agent.toml", mosquitto, tmp_path / "agent", vc.port)
    agent = AgentProcess(config, tmp_path / "agent.log")
    server = Backend(migrated_url, mosquitto, tmp_path / "backend.log")
    try:
        server.wait_up()
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
            # All up: a command is answered within a resend or two.
            first = _authorise(http, 101)
            wait_until(lambda: _commands(http)[first]["state"] == "done", what="auth-101 done")

            agent.kill()
            pending = [_authorise(http, n) for n in (102, 103, 104)]
            short = _authorise(http, 199, lifetime_s=SHORT_LIFETIME_S)
            # Resent while the agent is away: several copies of each wait at the broker.
            def resent() -> bool:
                now = _commands(http)
                return (all(now[c]["send_count"] >= 3 for c in pending)
                        and now[short]["send_count"] >= 2)
            wait_until(resent, what="every pending command resent")
            short_expiry = datetime.fromisoformat(str(_commands(http)[short]["expires_at"]))
        server.stop(signal.SIGKILL)

        # The short command's lifetime runs out while both are down.
        wait_until(lambda: datetime.now(UTC) > short_expiry, what="auth-199's expiry")
        agent = AgentProcess(config, tmp_path / "agent.log")
        # The agent takes its queued copies and answers into the backend's queue.
        wait_until(lambda: all(_auth_frames(vc)[c] for c in pending),
                   what="the pending commands at the controller")
        server = Backend(migrated_url, mosquitto, tmp_path / "backend.log")
        server.wait_up()
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
            wait_until(lambda: {c: _commands(http)[c]["state"] for c in [*pending, short]}
                       == {**dict.fromkeys(pending, "done"), short: "expired"},
                       what="pending done, the short one expired")
            shown = _commands(http)
            # Every copy the backend published is answered (from the agent's record
            # after the first), so none is left that could still reach the controller.
            # (Less one per command: the copy of the last tick may have died with the backend.)
            def all_answered() -> bool:
                answers = Counter(r["command_id"] for r in collector.on("cmd/result"))
                return all(answers[c] >= max(2, int(str(shown[c]["send_count"])) - 1)
                           for c in pending)
            wait_until(all_answered, what="every copy answered")
    finally:
        if agent.proc.poll() is None:
            agent.terminate()
        server.stop()
        vc.stop()
        collector.close()
    assert _auth_frames(vc) == Counter({first: 1, **dict.fromkeys(pending, 1)})
    fresh(session)
    stored = dict(session.exec(
        select(col(CommandResultRecord.command_id), func.count())
        .group_by(col(CommandResultRecord.command_id))).all())
    assert stored == {first: 1, **dict.fromkeys(pending, 1)}
    assert all(shown[c]["result"] for c in pending)
    assert shown[short]["result"] is None
    for log in ("agent.log", "backend.log"):
        text = (tmp_path / log).read_text(errors="replace")
        assert " ERROR " not in text, text[-3000:]
