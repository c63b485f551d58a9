"""Start ``nx-sim demo`` on free ports for the browser test, and stop all of it afterwards."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from simulators.broker import free_port
from tests.waiting import wait_until

MACHINES = 8
"""Few enough to start quickly on two shared cores, enough for every state to show."""
START_S = 150.0
STOP_S = 60.0
TOKEN_LINE = re.compile(r"^\s+(admin|outreach|health|provisioning)\s+(nxt_\S+)\s+\S", re.M)


@dataclass(frozen=True)
class DemoRun:
    """A running demo: where its console and API answer and its tokens."""

    console: str
    api: str
    tokens: dict[str, str]
    out: Path

    def get(self, path: str, role: str = "admin", **params: Any) -> Any:
        """Return the JSON the API answers ``role`` for ``path``."""
        answer = httpx.get(f"{self.api}{path}", params=params, timeout=10,
                           headers={"Authorization": f"Bearer {self.tokens[role]}"})
        answer.raise_for_status()
        return answer.json()

    def machines(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.get("/api/v1/machines", limit=1000)["data"]
        return data


@contextlib.contextmanager
def running_demo(workdir: Path) -> Iterator[DemoRun]:
    """Run the demo, its console on its sign-in page, until the context ends."""
    api_port, console_port = free_port(), free_port()
    out = workdir / "demo.out"
    command = [
        str(Path(sys.executable).with_name("nx-sim")), "demo",
        "--machines", str(MACHINES),
        "--api-port", str(api_port),
        "--console-port", str(console_port),
        # An hour a second: the history replays at once and stock moves while we look.
        "--speed", "3600",
        "--heartbeat-s", "2",
        # Three days of baseline: with one, the scan found the Kensington surge too
        # ordinary to flag, and the Hotspots page had no cluster to show (with three it
        # flagged it about 30 s after the start, here; the replay takes about 25 s).
        "--history-days", "3",
        "--console-role", "none",
        "--workdir", str(workdir / "demo"),
    ]  # fmt: skip
    with out.open("wb") as sink:
        demo = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        def banner() -> bool:
            assert demo.poll() is None, out.read_text()[-3000:]
            return "demo is running" in out.read_text()

        wait_until(banner, START_S, "the demo's banner")
        run = DemoRun(console=f"http://127.0.0.1:{console_port}",
                      api=f"http://127.0.0.1:{api_port}",
                      tokens=dict(TOKEN_LINE.findall(out.read_text())), out=out)
        wait_until(lambda: len(run.machines()) >= MACHINES, START_S, "the fleet in the API")
        yield run
    finally:
        if demo.poll() is None:
            # SIGTERM lets the demo stop its broker, backend, console and agents itself.
            os.killpg(demo.pid, signal.SIGTERM)
            try:
                demo.wait(STOP_S)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
