"""One agent per data dir: an advisory lock that the kernel drops with the process.

Two agents on one data dir would share a boot id and an outbox and number
their events from the same ``seq``; two agents on one serial port would each
take, store and ACK some of the controller's frames (the drivers open ports
exclusively for that). Both happen when an operator starts ``nx-agent run`` by
hand beside the systemd service. ``flock`` is released by the kernel when the
process ends however it ends, ``kill -9`` included, so a crash never leaves a
stale lock behind for the next start to trip over.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "agent.lock"


class DataDirError(RuntimeError):
    """The data dir cannot be created or opened."""


class InstanceLockError(DataDirError):
    """Another agent holds the data dir."""


class DataDirLock:
    """An exclusive lock on ``<data_dir>/agent.lock`` holding the owner's pid."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise InstanceLockError naming the holder's pid."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise DataDirError(
                f"cannot use the data dir {self.path.parent}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise InstanceLockError(
                f"another nx-agent (pid {holder}) is using {self.path.parent}") from None
        except OSError:
            os.close(fd)
            raise
        # The pid is for the operator's message only; the lock is what counts.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (closing the file drops it); a no-op if not held."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None
