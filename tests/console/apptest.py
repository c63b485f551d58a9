"""Running the console headless with AppTest, signed in to an in-memory API."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import console
from console import session
from tests.console.memory_api import ROLE_TOKENS, MemoryApi

APP = str(Path(console.__file__).parent / "app.py")
RUN_TIMEOUT_S = 60  # two shared cores: the first run imports pandas and pydeck


def sign_in(monkeypatch: pytest.MonkeyPatch, memory: MemoryApi, role: str) -> MemoryApi:
    """Make every page talk to ``memory``, signed in as ``role`` by a preset token."""
    monkeypatch.setattr(session, "make_client", memory.connect)
    monkeypatch.setattr(session, "preset_token", lambda: ROLE_TOKENS[role])
    return memory


def open_page(page: str | None = None) -> AppTest:
    """Run the app, switch to ``page`` when given, and check it raised nothing."""
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at
