"""Signing in to the console, and what each role then sees: AppTest runs of the real app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from console import navigation, session
from console.api_models import AuditRecord
from console.roles import PageKey
from tests.console.apptest import APP, RUN_TIMEOUT_S
from tests.console.fake_api import FakeState, alert_json
from tests.console.memory_api import ROLE_TOKENS, MemoryApi

AREA_ALERT = {
    **alert_json(7, alert_type="overdose_hotspot", severity="critical"),
    "machine_id": None,
    "subject": "area:Kensington",
}


@pytest.fixture
def api(fake_state: FakeState, monkeypatch: pytest.MonkeyPatch) -> MemoryApi:
    """An in-memory API with one token per role; no preset token, no single sign-on."""
    memory = MemoryApi(fake_state.machines, [*fake_state.alerts, AREA_ALERT], fake_state.hotspots)
    monkeypatch.setattr(session, "make_client", memory.connect)
    monkeypatch.setattr(session, "preset_token", lambda: None)
    monkeypatch.setattr(session, "oidc_provider", lambda: None)
    return memory


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)


def _sign_in(at: AppTest, token: str) -> AppTest:
    at.text_input(key="sign_in_token").input(token)
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    return at


def _listed_pages(at: AppTest) -> set[PageKey]:
    """Return the pages the navigation registered (switch_page refuses the others)."""
    listed = set()
    for key, spec in navigation.PAGE_SPECS.items():
        try:
            at.switch_page(str(spec.file))
        except ValueError:
            continue
        listed.add(key)
    return listed


def _alert_choices(at: AppTest) -> list[str]:
    return [label.split()[0] for label in at.selectbox(key="alerts_chosen").options]


def _signed_in_as(role: str) -> Callable[[AppTest], AppTest]:
    def sign(at: AppTest) -> AppTest:
        at.run()
        return _sign_in(at, ROLE_TOKENS[role])

    return sign


def test_without_a_token_only_the_sign_in_page_exists(api: MemoryApi) -> None:
    at = _app().run()
    assert not at.exception
    assert at.title[0].value == "Sign in"
    assert _listed_pages(at) == set()
    assert api.connected == []  # nothing asked of the API before a token is given


def test_a_wrong_token_is_refused_and_forgotten(api: MemoryApi) -> None:
    at = _sign_in(_app().run(), "not-a-real-token")
    assert at.title[0].value == "Sign in"
    assert "not accepted" in at.error[0].value
    assert "unknown, expired or revoked" in at.error[0].value
    assert at.text_input(key="sign_in_token").value == ""  # cleared after the attempt
    assert _listed_pages(at) == set()
    assert "not-a-real-token" not in at.query_params.values()


def test_a_good_token_signs_in_and_sign_out_forgets_it(
    api: MemoryApi, caplog: pytest.LogCaptureFixture
) -> None:
    token = ROLE_TOKENS["outreach"]
    caplog.set_level(logging.DEBUG)
    at = _sign_in(_app().run(), token)
    assert at.title[0].value == "Fleet map"
    assert "Signed in as **test-outreach** (outreach)" in at.sidebar.caption[0].value
    # The token is nowhere in the URL, the widgets' state or the log; only the client holds it.
    assert all(token not in str(v) for v in at.query_params.values())
    assert [k for k in at.session_state if token in str(at.session_state[k])] == []
    assert "signed in as test-outreach (outreach)" in caplog.text
    assert token not in caplog.text
    at.sidebar.button(key="sign_out").click().run()
    assert at.title[0].value == "Sign in"
    assert _listed_pages(at) == set()
    assert "nx_api_client" not in at.session_state


@pytest.mark.parametrize(
    ("role", "pages"),
    [
        ("admin", set(PageKey)),
        ("outreach", {PageKey.FLEET_MAP, PageKey.ALERTS, PageKey.RESTOCK, PageKey.MACHINE,
                      PageKey.ACCOUNT}),
        ("health", {PageKey.FLEET_MAP, PageKey.ALERTS, PageKey.MACHINE, PageKey.HOTSPOTS,
                    PageKey.TRENDS, PageKey.ACCOUNT}),
        ("provisioning", {PageKey.ACCOUNT}),
    ],
)  # fmt: skip
def test_navigation_lists_only_the_pages_of_the_role(
    api: MemoryApi, role: str, pages: set[PageKey]
) -> None:
    at = _signed_in_as(role)(_app())
    assert _listed_pages(at) == pages


def test_provisioning_lands_on_its_account_page(api: MemoryApi) -> None:
    at = _signed_in_as("provisioning")(_app())
    assert at.title[0].value == "Account"
    assert {m.label: m.value for m in at.metric}["Role"] == "provisioning"
    assert "no pages" in at.info[0].value


def test_outreach_acts_on_machine_alerts_only_and_never_asks_for_hotspots(
    api: MemoryApi,
) -> None:
    at = _signed_in_as("outreach")(_app())
    assert api.hotspot_calls == 0
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.ALERTS].file)).run()
    assert _alert_choices(at) == ["#1", "#2"]  # not the area alert #7
    at.button(key="alerts_ack").click().run()
    assert api.actions == [("acknowledged", 1)]


def test_health_acts_on_area_alerts_only_and_sees_hotspots(api: MemoryApi) -> None:
    at = _signed_in_as("health")(_app())
    assert api.hotspot_calls >= 1
    assert any(s.value == "Hotspots (1)" for s in at.subheader)
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.ALERTS].file)).run()
    assert _alert_choices(at) == ["#7"]
    at.button(key="alerts_resolve").click().run()
    assert api.actions == [("resolved", 7)]
    assert api.alerts_json[-1]["acted_by"] == "test-health"


def test_health_without_area_alerts_gets_no_buttons(api: MemoryApi) -> None:
    api.alerts_json.pop()  # only machine alerts left
    at = _signed_in_as("health")(_app())
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.ALERTS].file)).run()
    assert "2 of 2 alerts" in at.caption[0].value  # still readable
    assert not any(b.key in {"alerts_ack", "alerts_resolve"} for b in at.button)
    assert not [s for s in at.selectbox if s.key == "alerts_chosen"]


def test_a_token_revoked_mid_session_returns_to_sign_in_with_the_reason(
    api: MemoryApi,
) -> None:
    at = _signed_in_as("outreach")(_app())
    api.revoked.add(ROLE_TOKENS["outreach"])
    at.run()
    assert not at.exception
    assert at.title[0].value == "Sign in"
    assert "expired or revoked" in at.warning[0].value
    assert _listed_pages(at) == set()


def test_a_preset_token_signs_every_session_in(
    api: MemoryApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "preset_token", lambda: ROLE_TOKENS["admin"])
    at = _app().run()
    assert at.title[0].value == "Fleet map"
    assert _listed_pages(at) == set(PageKey)
    # Signing out of a kiosk session sticks until a new browser session.
    at.sidebar.button(key="sign_out").click().run()
    assert at.title[0].value == "Sign in"
    at.run()
    assert at.title[0].value == "Sign in"


def test_a_refused_preset_token_says_so_on_the_sign_in_page(
    api: MemoryApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "preset_token", lambda: "stale-kiosk-token")
    at = _app().run()
    assert at.title[0].value == "Sign in"
    assert "NX_CONSOLE_API_TOKEN" in at.warning[0].value
    assert "stale-kiosk-token" not in at.warning[0].value


def test_single_sign_on_hands_its_access_token_to_the_api(api: MemoryApi) -> None:
    at = _app()
    at.user = {"is_logged_in": True, "sub": "jdoe", "tokens": {"access": ROLE_TOKENS["health"]}}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Fleet map"
    assert api.connected == [ROLE_TOKENS["health"]]
    assert _listed_pages(at) == {PageKey.FLEET_MAP, PageKey.ALERTS, PageKey.MACHINE,
                                 PageKey.HOTSPOTS, PageKey.TRENDS, PageKey.ACCOUNT}  # fmt: skip


def test_single_sign_on_without_an_exposed_access_token_explains_the_setting(
    api: MemoryApi,
) -> None:
    at = _app()
    at.user = {"is_logged_in": True, "sub": "jdoe", "tokens": {"id": "an-id-token"}}
    at.run()
    assert at.title[0].value == "Sign in"
    assert 'expose_tokens = "access"' in at.warning[0].value
    assert api.connected == []  # the ID token is not an API credential


def test_the_sign_in_page_offers_single_sign_on_when_configured(
    api: MemoryApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app().run()
    assert not [b for b in at.button if b.key == "sign_in_oidc"]
    monkeypatch.setattr(session, "oidc_provider", lambda: "health-dept")
    at.run()
    assert at.button(key="sign_in_oidc").label == "Sign in with single sign-on"


def test_oidc_access_token_reads_only_a_logged_in_users_access_token() -> None:
    assert session.oidc_access_token({}) is None
    assert session.oidc_access_token({"is_logged_in": False, "tokens": {"access": "a"}}) is None
    assert session.oidc_access_token({"is_logged_in": True, "tokens": {}}) is None
    assert session.oidc_access_token({"is_logged_in": True, "tokens": {"access": ""}}) is None
    assert session.oidc_access_token({"is_logged_in": True, "tokens": {"access": "a"}}) == "a"


def test_an_admin_creates_a_token_sees_it_once_and_revokes_it(api: MemoryApi) -> None:
    at = _signed_in_as("admin")(_app())
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.TOKENS].file)).run()
    at.text_input(key="token_name").input("van-2")
    at.selectbox(key="token_role").set_value("outreach")
    at.text_input(key="token_expires").input("90d")
    at.button[0].click().run()  # "Create token"
    assert not at.exception, at.exception
    assert "Copy it now" in at.success[0].value
    assert at.code[0].value == "nx_memory_0"
    assert any(s.value == "Tokens (1)" for s in at.subheader)
    at.run()
    assert not at.code  # shown once, never again
    at.selectbox(key="revoke_name").set_value("van-2")
    at.button[1].click().run()  # "Revoke"
    assert "revoked" in at.success[0].value
    assert any(s.value == "Tokens (0)" for s in at.subheader)
    assert api.token_rows[0].state == "revoked"


def test_pages_a_role_lacks_are_unreachable_by_path(api: MemoryApi) -> None:
    at = _signed_in_as("health")(_app())
    for key in (PageKey.RESTOCK, PageKey.TOKENS):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(str(Path(navigation.PAGE_SPECS[key].file)))


def test_an_unreachable_api_at_sign_in_is_said_plainly(api: MemoryApi) -> None:
    api.unreachable = "http://127.0.0.1:9"
    at = _sign_in(_app().run(), ROLE_TOKENS["admin"])
    assert at.title[0].value == "Sign in"
    assert at.error[0].value == "Cannot sign in: cannot reach the API at http://127.0.0.1:9"
    assert ROLE_TOKENS["admin"] not in at.error[0].value


def test_a_refused_action_is_a_clear_error_and_the_session_stays_signed_in(
    api: MemoryApi,
) -> None:
    at = _signed_in_as("outreach")(_app())
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.ALERTS].file)).run()
    api.refuse_writes = True
    at.button(key="alerts_ack").click().run()
    assert not at.exception
    assert at.error[0].value.startswith("The API refused: your role may not do this (POST ")
    assert at.title[0].value == "Alerts"  # a 403 is not a sign-out
    assert api.actions == []


def test_signing_out_of_single_sign_on_also_ends_streamlits_login(api: MemoryApi) -> None:
    at = _app()
    at.user = {"is_logged_in": True, "sub": "jdoe", "tokens": {"access": ROLE_TOKENS["health"]}}
    at.run()
    assert at.title[0].value == "Fleet map"
    at.sidebar.button(key="sign_out").click().run()
    assert not at.exception
    assert at.user.get("is_logged_in") is False
    assert at.title[0].value == "Sign in"


def test_an_admin_reads_the_audit_trail_filtered_by_who(api: MemoryApi) -> None:
    api.audit_records = [
        AuditRecord(id=2, at=datetime(2026, 12, 3, 14, 0, tzinfo=UTC), actor="outreach-north",
                    action="alert.resolve", object_type="alert", object_id="1",
                    before={"status": "open"}, after={"status": "resolved"}, request_id="r-2"),
        AuditRecord(id=1, at=datetime(2026, 12, 3, 13, 0, tzinfo=UTC), actor="demo",
                    action="token.create", object_type="token", object_id="demo-admin",
                    after={"role": "admin"}),
    ]  # fmt: skip
    at = _signed_in_as("admin")(_app())
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.AUDIT].file)).run()
    assert not at.exception
    assert "2 records · page 1 of 1" in at.caption[0].value
    at.text_input(key="audit_actor").input("outreach-north").run()
    assert "1 records" in at.caption[0].value
    table = at.dataframe[0].value
    assert list(table["what"]) == ["alert.resolve"]
    assert list(table["object"]) == ["alert 1"]
    assert list(table["after"]) == ['{"status": "resolved"}']
    assert api.audit_queries[-1]["actor"] == "outreach-north"
