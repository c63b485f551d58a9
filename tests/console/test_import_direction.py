"""The console talks to the backend over HTTP only: it imports none of the other packages."""

from __future__ import annotations

from tests.imports import absolute_imports, top

OTHER_PACKAGES = {"backend", "firmware_agent", "simulators", "tests"}


def test_the_console_imports_nothing_of_the_other_packages() -> None:
    offenders = [f"{path}: {name}" for path, name in absolute_imports("console")
                 if top(name) in OTHER_PACKAGES]
    assert offenders == []


def test_the_check_sees_the_console_imports() -> None:
    # A walk that found no files would pass the test above vacuously.
    assert any(top(name) == "streamlit" for _, name in absolute_imports("console"))
