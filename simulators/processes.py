"""Child processes of the demo: each in its own process group, stopped as a group."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

STOP_GRACE_S = 15.0
"""How long a child group has to exit after SIGTERM before it gets SIGKILL."""
POLL_S = 0.2


class ChildFailedError(RuntimeError):
    """A child process exited or did not become ready in time."""


def entry_point(name: str) -> str:
    """Return the path of one of our console scripts (next to this interpreter first)."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ChildFailedError(f"{name} is not installed (pip install -e '.[all]')")
    return found


class Child:
    """One started command, leader of its own process group, logging to a file."""

    def __init__(
        self, name: str, command: Sequence[str], env: Mapping[str, str], log_file: Path
    ) -> None:
        self.name = name
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_file.open("ab")
        # A new session makes the child lead its own process group, so that
        # stopping it also stops whatever it started (uvicorn workers, ...).
        self.process = subprocess.Popen(
            list(command),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.info("started %s (pid %d), log in %s", name, self.process.pid, log_file)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        """Return whether the child has not exited."""
        return self.process.poll() is None

    def wait_http(self, url: str, timeout_s: float, expect: str | None = None) -> None:
        """Return once ``url`` answers 200 (and contains ``expect``); raise if the child dies."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise ChildFailedError(
                    f"{self.name} exited with code {self.process.returncode}; "
                    f"see {self.log_file}:\n{self.log_tail()}"
                )
            try:
                response = httpx.get(url, timeout=2.0)
                if response.status_code == 200 and (expect is None or expect in response.text):
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(POLL_S)  # polling a port with a deadline
        raise ChildFailedError(f"{self.name} did not answer {url} within {timeout_s:.0f}s")

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Send SIGTERM to the child's group, then SIGKILL what is left after ``grace_s``."""
        if self.alive():
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", self.name, grace_s)
        # Whatever is left in the group (the leader or stragglers) goes now.
        _signal_group(self.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()
        log.info("%s stopped (exit code %s)", self.name, self.process.returncode)

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the child's log."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # the whole group is gone already
    except PermissionError:
        # The group id was reused by someone else's process: never signal it.
        log.warning("process group %d is no longer ours; not signalling it", pgid)
