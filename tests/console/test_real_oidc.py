"""Console single sign-on against the real backend and a local OpenID provider.

Streamlit's login redirect needs a browser; what follows it does not: a
logged-in ``st.user`` whose exposed access token the console sends to the API,
which verifies it against the provider's keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from backend.app import create_app
from backend.config import Settings
from backend.db import migrate
from console import session
from console.client import ApiClient
from tests.backend.test_oidc import AUDIENCE, ROLE_MAP, Issuer, issuer
from tests.console.apptest import APP, RUN_TIMEOUT_S
from tests.http_server import serve_http

__all__ = ["issuer"]  # the local provider fixture, shared with the backend's OIDC tests


@pytest.fixture
def oidc_api(tmp_path: Path, issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Serve the backend with OIDC from ``issuer``; console clients go to it, no preset token."""
    url = f"sqlite:///{tmp_path / 'oidc.db'}"
    migrate(url)
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": url,
        "oidc_issuer": issuer.url,
        "oidc_audience": AUDIENCE,
        "oidc_role_map": ROLE_MAP,
    }
    with serve_http(create_app(Settings.model_validate(values))) as base_url:
        monkeypatch.setattr(session, "make_client", lambda t: ApiClient(base_url, token=t))
        monkeypatch.setattr(session, "preset_token", lambda: None)
        yield base_url


def _console(access_token: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.user = {"is_logged_in": True, "sub": "dana", "tokens": {"access": access_token}}
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_provider_access_token_signs_the_console_in_with_the_mapped_role(
    oidc_api: str, issuer: Issuer
) -> None:
    (kid,) = issuer.keys
    at = _console(issuer.token(kid, groups=["epi"]))
    assert at.title[0].value == "Fleet map"
    assert "Signed in as **dana@health.example** (health)" in at.sidebar.caption[0].value
    assert not at.error
    at.switch_page("views/account.py").run()
    assert "single sign-on" in at.caption[0].value


def test_an_expired_or_foreign_access_token_leaves_the_console_on_sign_in(
    oidc_api: str, issuer: Issuer
) -> None:
    (kid,) = issuer.keys
    now = int(time.time())
    expired = issuer.token(kid, iat=now - 3600, exp=now - 600)
    at = _console(expired)
    assert at.title[0].value == "Sign in"
    assert "single sign-on access token was not accepted" in at.warning[0].value
    assert expired not in at.warning[0].value
    wrong_audience = issuer.token(kid, aud="someone-else")
    at = _console(wrong_audience)
    assert at.title[0].value == "Sign in"
