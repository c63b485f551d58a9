"""Fixtures shared by the whole suite: a real Mosquitto, and a guard against swallowed errors."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from simulators.broker import MosquittoBroker

# Property tests run derandomised by default ("ci"): the same examples on every run,
# so a red build means a change, not luck. `make fuzz` loads "fuzz" instead: a fresh
# random seed and many more examples; a failure it finds becomes an @example (README).
settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz", derandomize=False, deadline=None, print_blob=True,
    max_examples=int(os.environ.get("NX_FUZZ_EXAMPLES", "2000")),
    suppress_health_check=[HealthCheck.too_slow],
)
# --hypothesis-profile on the command line is applied later and wins over this.
settings.load_profile(os.environ.get("NX_HYPOTHESIS_PROFILE", "ci"))

SLOW_FILES_FIRST = (
    "tests/backend/test_schemathesis.py",
    "tests/faults/test_ingest_link.py",
    "tests/faults/test_agent_link.py",
    "tests/backend/test_replicas.py",
    "tests/browser/test_console_browser.py",
    "tests/faults/test_postgres_faults.py",
    "tests/backend/test_backup_restore.py",
    "tests/backend/test_commands_processes.py",
    "tests/sim/test_demo.py",
    "tests/e2e/test_spine.py",
)
"""The longest test files (``--durations``), started first: with several workers (make
test) the run then does not end with the others idle while one of these goes on alone."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


BACKEND_USER = "nx-backend"
BACKEND_PASSWORD = "backend-test-password"
TEST_MACHINES = {f"test-{n:03d}": f"machine-pw-{n:03d}" for n in range(1, 11)}
"""Machines the default test broker knows, id -> password."""


@pytest.fixture
def broker_users() -> dict[str, str]:
    """Users of the test broker; override in a module to add more."""
    return {BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES}


@pytest.fixture
def mosquitto(broker_users: dict[str, str]) -> Iterator[MosquittoBroker]:
    """A real Mosquitto from broker_config/ on a free port, removed afterwards."""
    broker = MosquittoBroker(broker_users)
    try:
        broker.start()
        yield broker
    finally:
        broker.cleanup()


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_logged_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test during which our code logged an ERROR (a caught-and-logged exception).

    Code logs bad input at WARNING and only the unexpected at ERROR; a test
    that provokes an ERROR on purpose marks itself ``allow_logged_errors``.
    """
    collector = _ErrorCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    ours = [
        r for r in collector.records
        if r.name.split(".")[0] in {"firmware_agent", "backend", "simulators", "console"}
    ]
    if ours and request.node.get_closest_marker("allow_logged_errors") is None:
        lines = "\n".join(f"{r.name}: {r.getMessage()}" for r in ours)
        pytest.fail(f"errors were logged during the test:\n{lines}")
