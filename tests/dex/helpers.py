"""Small helpers for the DEX tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "dex"
WAIT_S = 20.0
"""Generous: two cores shared with other engineers' test runs."""


def read_sample(name: str) -> bytes:
    """Return the bytes of a real audit file from tests/data/dex."""
    return (DATA / name).read_bytes()


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S, what: str = "") -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)  # polling interval of the wait itself, not a wait for an outcome
