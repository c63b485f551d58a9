"""Tell a running Mosquitto to re-read its password file, ACL and CRL (SIGHUP via its pid file)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from firmware_agent.wire.digits import ascii_int


class BrokerSignalError(RuntimeError):
    """The broker could not be signalled (no pid file, stale pid, no permission)."""


def read_pid(pid_file: Path) -> int:
    """Return the pid written in ``pid_file``."""
    try:
        # Bytes, not text: a damaged file must reach the check below, not raise
        # UnicodeDecodeError (a ValueError that no caller expects).
        text = pid_file.read_bytes().decode("ascii", errors="replace").strip()
    except OSError as exc:
        raise BrokerSignalError(f"cannot read broker pid file {pid_file}: {exc}") from exc
    pid = ascii_int(text)
    if pid is None or pid <= 1:
        raise BrokerSignalError(f"broker pid file {pid_file} does not hold a pid: {text[:40]!r}")
    return pid


def reload_broker(pid_file: Path) -> int:
    """Send SIGHUP to the broker named by ``pid_file`` and return its pid.

    On SIGHUP Mosquitto 2.0 re-reads the password file and ACL and
    disconnects connected clients whose credential is no longer valid.
    """
    pid = read_pid(pid_file)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError as exc:
        raise BrokerSignalError(f"no broker runs with pid {pid} (stale {pid_file})") from exc
    except PermissionError as exc:
        raise BrokerSignalError(f"not allowed to signal broker pid {pid}: run as its owner"
                                ) from exc
    return pid
