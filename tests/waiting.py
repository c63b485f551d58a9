"""Waiting on a condition with a deadline: the only way tests wait."""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_TIMEOUT_S = 30.0
"""Generous: two shared cores, several suites at once on a developer machine."""
POLL_S = 0.02


def wait_until(predicate: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT_S,
               what: str = "") -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(POLL_S)  # ok: polling a condition with a deadline
