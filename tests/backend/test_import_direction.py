"""The backend shares only the wire format with the agent, and nothing with the console."""

from __future__ import annotations

from tests.imports import absolute_imports, top


def _agent_imports() -> list[tuple[str, str]]:
    return [(path, name) for path, name in absolute_imports("backend")
            if top(name) == "firmware_agent"]


def test_the_backend_imports_only_the_wire_package_of_the_agent() -> None:
    offenders = [f"{path}: {name}" for path, name in _agent_imports()
                 if name != "firmware_agent.wire" and not name.startswith("firmware_agent.wire.")]
    assert offenders == []


def test_the_backend_imports_nothing_of_the_console_or_the_simulators() -> None:
    offenders = [f"{path}: {name}" for path, name in absolute_imports("backend")
                 if top(name) in {"console", "simulators", "tests"}]
    assert offenders == []


def test_the_check_sees_the_backend_imports_of_the_wire_format() -> None:
    # A walk that found no files would pass the tests above vacuously.
    assert any(name.startswith("firmware_agent.wire.") for _, name in _agent_imports())
