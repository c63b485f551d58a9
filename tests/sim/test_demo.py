"""``nx-sim demo`` as a user runs it: everything comes up, stock moves, SIGTERM leaves nothing."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simulators.broker import free_port
from simulators.demo_config import DemoConfig, DemoError, check_ports
from tests.sim.test_processes import alive, descendants
from tests.waiting import wait_until

DEMO_MACHINES = 20
START_S = 150.0
"""Broker, migrations, backend, 20 agents and Streamlit on two shared cores."""
STOP_S = 60.0
TOKEN_LINE = re.compile(r"^\s+(admin|outreach|health|provisioning)\s+(nxt_\S+)\s+\S", re.M)
"""A banner line with one role's token and what it is for."""


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _machines(api: str, token: str) -> list[dict[str, object]]:
    try:
        response = httpx.get(f"{api}/api/v1/machines", params={"limit": 1000}, timeout=5,
                             headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError:
        return []
    if response.status_code != 200:
        return []
    data: list[dict[str, object]] = response.json()["data"]
    return data


def _stock(machines: list[dict[str, object]]) -> dict[tuple[str, int], int]:
    return {
        (str(m["id"]), int(s["slot"])): int(s["count"])
        for m in machines
        for s in m["slots"]  # type: ignore[attr-defined]
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "stop_by",
    [
        pytest.param("sigterm", id="SIGTERM-to-the-demo"),
        pytest.param("ctrl-c", id="SIGINT-to-its-process-group"),
    ],
)
def test_demo_runs_and_a_stop_signal_ends_every_child(tmp_path: Path, stop_by: str) -> None:
    api_port, console_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    out = tmp_path / "demo.out"
    command = [
        str(Path(sys.executable).with_name("nx-sim")),
        "demo",
        "--machines", str(DEMO_MACHINES),
        "--api-port", str(api_port),
        "--console-port", str(console_port),
        "--speed", "3600",
        "--heartbeat-s", "2",
        "--history-days", "1",
        "--workdir", str(tmp_path / "demo"),
    ]  # fmt: skip
    with out.open("wb") as sink:
        # Its own group, as in a terminal: Ctrl-C there signals the whole group.
        demo = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    family: set[int] = set()
    try:
        first: dict[tuple[str, int], int] = {}

        def banner() -> bool:
            assert demo.poll() is None, out.read_text()
            return "demo is running" in out.read_text()

        wait_until(banner, START_S, "the banner")
        text = out.read_text()
        printed = dict(TOKEN_LINE.findall(text))
        assert set(printed) == {"admin", "outreach", "health", "provisioning"}, text
        assert len(set(printed.values())) == 4
        assert f"http://127.0.0.1:{console_port}  (signed in as admin" in text
        for role, secret in printed.items():
            me = httpx.get(f"{api}/api/v1/auth/me", timeout=5,
                           headers={"Authorization": f"Bearer {secret}"})
            assert me.status_code == 200, me.text
            assert (me.json()["name"], me.json()["role"]) == (f"demo-{role}", role)
        token = printed["admin"]
        assert httpx.get(f"{api}/api/v1/machines", timeout=5).status_code == 401

        def fleet_listed() -> bool:
            assert demo.poll() is None, out.read_text()
            machines = _machines(api, token)
            first.update(_stock(machines))
            return len(machines) >= DEMO_MACHINES

        wait_until(fleet_listed, START_S, f"the API to list {DEMO_MACHINES} machines")

        def stock_moved() -> bool:
            now = _stock(_machines(api, token))
            return sum(1 for key, n in now.items() if n < first.get(key, n)) >= 3

        wait_until(stock_moved, START_S, "dispenses to lower the stock in the API")

        def team_followed_the_plan() -> bool:
            # The simulated team issues the backend's plan and records its visits
            # through the API with the outreach token, as a phone would.
            assert demo.poll() is None, out.read_text()
            done = {}
            for action in ("restock_plan.issue", "visit.record"):
                answer = httpx.get(f"{api}/api/v1/audit", timeout=5, headers=bearer_admin,
                                   params={"action": action, "actor": "demo-outreach"})
                done[action] = len(answer.json()["data"]) if answer.status_code == 200 else 0
            return done["restock_plan.issue"] >= 1 and done["visit.record"] >= 1

        bearer_admin = {"Authorization": f"Bearer {token}"}
        wait_until(team_followed_the_plan, START_S, "the outreach team to follow a plan")
        text = out.read_text()
        assert f"http://127.0.0.1:{console_port}" in text
        assert f"{api}/docs" in text
        broker_port = int(re.search(r"mqtt://127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]
        inbox = re.search(r"webhooks  (http://127\.0\.0\.1:(\d+)/)", text)
        assert inbox is not None, text
        assert "received" in httpx.get(inbox.group(1), timeout=5).json()
        assert "e-mail    smtp://127.0.0.1:" in text
        assert httpx.get(f"http://127.0.0.1:{console_port}/_stcore/health", timeout=5).text == "ok"
        public = httpx.get(f"{api}/public/v1/machines", timeout=5).json()["machines"]
        assert len(public) == DEMO_MACHINES  # the demo lists every machine publicly
        assert {m["naloxone"] for m in public} <= {"available", "out", "unknown"}

        family = descendants(demo.pid)
        assert len(family) >= 3  # broker, backend, console (and their own children)
        if stop_by == "sigterm":
            demo.send_signal(signal.SIGTERM)
        else:
            os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(STOP_S) == 0, out.read_text()[-3000:]
        assert "demo stopped" in out.read_text()
        # Printed once in the banner, and in no log line of the demo or its children.
        assert all(out.read_text().count(secret) == 1 for secret in printed.values())
        for log_file in (tmp_path / "demo" / "logs").glob("*.log"):
            logged = log_file.read_text(errors="replace")
            assert not [s for s in printed.values() if s in logged], log_file
        wait_until(lambda: not any(alive(pid) for pid in family), STOP_S, "every child to exit")
        for port in (broker_port, api_port, console_port, int(inbox.group(2))):
            assert not _listening(port), f"port {port} is still open"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        for pid in family:  # never leave a stray behind when the test fails
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_demo_refuses_a_busy_port_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = [
            str(Path(sys.executable).with_name("nx-sim")),
            "demo",
            "--api-port", str(port),
            "--console-port", str(free_port()),
            "--workdir", str(tmp_path / "demo"),
        ]  # fmt: skip
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} is already in use; choose another with --api-port" in result.stderr
    assert not (tmp_path / "demo").exists()  # refused before touching anything


def test_check_ports_wants_two_different_ports() -> None:
    port = free_port()
    with pytest.raises(DemoError, match="must differ"):
        check_ports(DemoConfig(api_port=port, console_port=port))
    check_ports(DemoConfig(api_port=port, console_port=port, console=False))


def test_demo_refuses_a_scenario_that_names_absent_machines(tmp_path: Path) -> None:
    scenario = tmp_path / "outage.toml"
    scenario.write_text(
        'name = "outage"\n[[event]]\nkind = "dark"\nstart_h = 1\nduration_h = 2\n'
        'machines = ["phl-099"]\n',
        encoding="utf-8",
    )
    command = [
        str(Path(sys.executable).with_name("nx-sim")),
        "demo",
        "--machines", "2",
        "--api-port", str(free_port()),
        "--console-port", str(free_port()),
        "--scenario", str(scenario),
        "--workdir", str(tmp_path / "demo"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert "phl-099, which this fleet does not have" in result.stderr
    assert not (tmp_path / "demo").exists()
