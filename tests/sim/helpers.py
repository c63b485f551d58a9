"""Test helpers shared by the console and simulator tests."""

from __future__ import annotations

import time
from collections.abc import Callable

WAIT_S = 30.0
"""Generous default deadline: two shared cores run several suites at once."""
POLL_S = 0.05


def wait_until(
    predicate: Callable[[], bool], timeout: float = WAIT_S, message: str = "condition"
) -> None:
    """Return once ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(POLL_S)  # polling a condition with a deadline, not waiting blindly
