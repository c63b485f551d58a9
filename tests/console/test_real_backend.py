"""The console's client and pages against the real backend app (SQLite, uvicorn, HTTP).

Checks that the console's models of the API match what the backend really
serves, and that what a signed-in role sees in the console is what the API
lets it do; the fake API in the other tests only restates the contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from backend import crud
from backend.alerts.rules import AlertSpec
from backend.alerts.store import open_alert
from backend.app import create_app
from backend.auth.tokens import create_token
from backend.config import Settings
from backend.db import make_engine, migrate, session_scope
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import AlertType, Severity, utcnow
from console import navigation, session
from console.api_models import AlertStatus, Health
from console.client import ApiClient, ApiError, ForbiddenError, NotFoundError, UnauthorizedError
from console.roles import PageKey
from firmware_agent.wire import payloads
from simulators.fleet_plan import plan_fleet
from tests.console.apptest import APP, RUN_TIMEOUT_S
from tests.http_server import serve_http

AREA_SUBJECT = "area:Kensington"
HTTP_TIMEOUT_S = 30.0
"""The API runs in this process on a loaded 2-core box: its first answer can take more
than the console's 5 s, and a timed-out sign-in leaves the page at "Sign in"."""


@dataclass(frozen=True)
class RealBackend:
    url: str
    tokens: dict[str, str]
    database_url: str
    """role -> token; the outreach one is named ``outreach-north``, the others ``test-<role>``."""

    @property
    def token(self) -> str:
        return self.tokens["outreach"]


@pytest.fixture
def backend_api(tmp_path: Path) -> Iterator[RealBackend]:
    """Serve the real backend on SQLite: three machines, a hotspot alert, a token per role."""
    url = f"sqlite:///{tmp_path / 'console.db'}"
    migrate(url)
    engine = make_engine(url)
    specs = plan_fleet(3, seed=3)
    with session_scope(engine) as db:
        for n, spec in enumerate(specs):
            slots = [slot.as_registration() for slot in spec.slots]
            if n == 0:
                slots[0]["count"] = 0  # an empty naloxone slot: the backend should say so
            crud.register_machine(
                session=db,
                actor="test",
                machine_id=spec.machine_id,
                name=spec.name,
                lat=spec.lat,
                lon=spec.lon,
                site=spec.site,
                slots=slots,
            )
        # An area alert, as the hotspot job opens it: health's work, not outreach's.
        spec_area = AlertSpec(
            AlertType.OVERDOSE_HOTSPOT, Severity.CRITICAL, AREA_SUBJECT, None, "Dispense surge"
        )
        open_alert(db, spec_area, details={"lat": 39.99, "lon": -75.12, "radius_km": 0.8})
        tokens = {
            role: create_token(
                db, name="outreach-north" if role == "outreach" else f"test-{role}", role=role
            )
            for role in ("admin", "outreach", "health", "provisioning")
        }
    app = create_app(Settings(database_url=url), engine=engine)
    try:
        with serve_http(app) as base_url:
            yield RealBackend(base_url, tokens, url)
    finally:
        engine.dispose()


def _console(backend: RealBackend, monkeypatch: pytest.MonkeyPatch, role: str) -> AppTest:
    """Run the console app against the real API and sign in on its page with ``role``'s token."""
    monkeypatch.setattr(session, "make_client", lambda t: ApiClient(backend.url, token=t,
                                                                   timeout_s=HTTP_TIMEOUT_S))
    monkeypatch.setattr(session, "preset_token", lambda: None)
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.run()
    assert at.title[0].value == "Sign in"
    at.text_input(key="sign_in_token").input(backend.tokens[role])
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def _listed_pages(at: AppTest) -> set[PageKey]:
    listed = set()
    for key, spec in navigation.PAGE_SPECS.items():
        try:
            at.switch_page(str(spec.file))
        except ValueError:
            continue
        listed.add(key)
    return listed


def test_client_reads_the_real_api_and_acts_on_an_alert(backend_api: RealBackend) -> None:
    url, token = backend_api.url, backend_api.token
    with ApiClient(url, page_size=2) as anonymous:
        with pytest.raises(ApiError) as refused:
            anonymous.all_machines()
        assert refused.value.status_code == 401
    with ApiClient(url, token=token, page_size=2) as client:
        machines = client.all_machines()
        assert [m.id for m in machines] == ["phl-001", "phl-002", "phl-003"]
        assert machines[0].lat is not None
        assert machines[0].slots[0].count == 0
        assert machines[0].health in {Health.EMPTY, Health.ALARM}
        detail = client.machine("phl-002")
        assert detail.name == machines[1].name
        with pytest.raises(NotFoundError):
            client.machine("phl-999")
        open_alerts = client.alerts(status=AlertStatus.OPEN, machine_id="phl-001")
        assert open_alerts.count >= 1
        alert = open_alerts.data[0]
        client.acknowledge_alert(alert.id)
        acked = client.alerts(status=AlertStatus.ACKNOWLEDGED).data
        assert [(a.id, a.acted_by) for a in acked] == [(alert.id, "outreach-north")]
        client.resolve_alert(alert.id)
        assert alert.id in {a.id for a in client.alerts(status=AlertStatus.RESOLVED).data}


def test_fleet_map_page_draws_the_real_fleet(
    backend_api: RealBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _console(backend_api, monkeypatch, "admin")
    assert at.title[0].value == "Fleet map"
    assert not at.error
    assert {m.label: m.value for m in at.metric}["Machines"] == "3"
    assert at.get("deck_gl_json_chart")[0].proto.json.count('"health_label"') == 3


def test_a_restock_visit_through_the_real_api_clears_the_empty_slot(
    backend_api: RealBackend,
) -> None:
    with ApiClient(backend_api.url, token=backend_api.token) as client:
        before = client.machine("phl-001")
        counts = {slot.slot: max(slot.count, slot.par or 0) for slot in before.slots}
        visit = client.record_restock_visit("phl-001", counts)
        assert visit.visited_by == "outreach-north"
        after = client.machine("phl-001")
        assert {s.slot: s.count for s in after.slots} == counts
        assert after.health is Health.OK
        assert client.alerts(status=AlertStatus.OPEN, machine_id="phl-001").count == 0


def test_a_console_signed_in_as_health_offers_no_machine_writes_and_the_api_refuses_them(
    backend_api: RealBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _console(backend_api, monkeypatch, "health")
    assert at.title[0].value == "Fleet map"
    assert "(health)" in at.sidebar.caption[0].value
    assert not at.error
    assert any(s.value == "Hotspots (1)" for s in at.subheader)  # health reads hotspots
    assert _listed_pages(at) == {
        PageKey.FLEET_MAP, PageKey.ALERTS, PageKey.MACHINE, PageKey.HOTSPOTS, PageKey.TRENDS,
        PageKey.ACCOUNT,
    }  # fmt: skip
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.ALERTS].file)).run()
    assert not at.error
    # Health sees and may act on the area alert only; no machine alert, no machine button.
    choices = at.selectbox(key="alerts_chosen").options
    assert len(choices) == 1
    assert "overdose hotspot" in choices[0]

    # Whatever the console hides, the API refuses for this token too.
    with ApiClient(backend_api.url, token=backend_api.tokens["health"]) as health:
        machine = health.machine("phl-001")  # the fleet is readable
        with pytest.raises(ForbiddenError, match="your role may not do this") as refused:
            health.record_restock_visit("phl-001", {s.slot: s.count for s in machine.slots})
        assert refused.value.status_code == 403
        with pytest.raises(ForbiddenError):
            health.tokens()
    with ApiClient(backend_api.url, token=backend_api.tokens["outreach"]) as outreach:
        machine_alert = outreach.alerts(machine_id="phl-001").data[0]
        with pytest.raises(ForbiddenError):
            outreach.hotspots()
    with ApiClient(backend_api.url, token=backend_api.tokens["health"]) as health:
        # A machine alert does not exist for health (404, so existence does not leak).
        with pytest.raises(NotFoundError):
            health.acknowledge_alert(machine_alert.id)
        assert all(a.machine_id is None for a in health.alerts(status=None).data)
    with ApiClient(backend_api.url, token=backend_api.token) as outreach:
        assert outreach.machine("phl-001").slots == machine.slots  # no visit was recorded


def test_outreach_plans_the_shift_and_records_a_visit_once_through_the_real_api(
    backend_api: RealBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Signed in by a preset token: the sign-in form is tested above.
    monkeypatch.setattr(session, "make_client",
                        lambda t: ApiClient(backend_api.url, token=t, timeout_s=HTTP_TIMEOUT_S))
    monkeypatch.setattr(session, "preset_token", lambda: backend_api.token)
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.RESTOCK].file)).run()
    assert not at.error, [e.value for e in at.error]
    # The planner's route, numbered; the machine with no naloxone is on it.
    stops = [e.label for e in at.expander if e.label[:1].isdigit()]
    assert stops[0].startswith("1 · ")
    assert any("Critical" in label for label in stops), stops
    at.button(key="restock_issue").click().run()  # the team follows it: issue it
    assert not at.error, [e.value for e in at.error]
    assert "Issued plan #1 by outreach-north" in at.caption[0].value
    with ApiClient(backend_api.url, token=backend_api.token) as client:
        empty = next(s for s in client.machine("phl-001").slots if s.count == 0)
    form = f"visit_phl-001_{empty.slot}"
    at.number_input(key=f"{form}_found").set_value(0)
    at.text_input(key=f"{form}_lot0").input("NX-4471")
    at.date_input(key=f"{form}_expiry0").set_value(date.today() + timedelta(days=400))
    submit = "FormSubmitter:visit_phl-001-Record visit"
    at.button(key=submit).click().run()
    assert not at.error, [e.value for e in at.error]
    assert any("recorded" in s.value for s in at.success)
    with ApiClient(backend_api.url, token=backend_api.token) as client:
        lots = client._request("GET", "/api/v1/machines/phl-001/lots")["data"]
        assert [(lot["lot_number"], lot["slot"]) for lot in lots] == [("NX-4471", empty.slot)]
        assert client.machine("phl-001").health is Health.OK
        # The page's key, sent again (a retry from a phone), records nothing more.
        key = at.session_state["restock_visit_keys"]["phl-001"]
        body = {"machine_id": "phl-001", "slots": [{"slot": empty.slot, "found": 0, "loaded": [
            {"lot_number": "NX-4471", "product": empty.product,
             "expiry": (date.today() + timedelta(days=400)).isoformat(),
             "quantity": lots[0]["quantity"]}]}]}
        again = client.record_visit(body, idempotency_key=key)
        assert again.counts == {str(empty.slot): lots[0]["quantity"]}
        assert len(client._request("GET", "/api/v1/machines/phl-001/lots")["data"]) == 1


def test_a_token_revoked_while_signed_in_sends_the_console_back_to_sign_in(
    backend_api: RealBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _console(backend_api, monkeypatch, "outreach")
    assert at.title[0].value == "Fleet map"
    with ApiClient(backend_api.url, token=backend_api.tokens["admin"]) as admin:
        revoked = admin.revoke_token("outreach-north")
        assert revoked.state == "revoked"
    at.run()
    assert not at.exception
    assert at.title[0].value == "Sign in"
    assert "expired or revoked" in at.warning[0].value
    with ApiClient(backend_api.url, token=backend_api.token) as stale, pytest.raises(
        UnauthorizedError
    ):
        stale.me()


def test_a_wrong_token_is_refused_by_the_real_api(
    backend_api: RealBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "make_client", lambda t: ApiClient(backend_api.url, token=t))
    monkeypatch.setattr(session, "preset_token", lambda: None)
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()
    at.text_input(key="sign_in_token").input("nxt_" + "0" * 43)
    at.button[0].click().run()
    assert at.title[0].value == "Sign in"
    assert "not accepted" in at.error[0].value
    with ApiClient(backend_api.url) as anonymous, pytest.raises(ApiError) as refused:
        anonymous.me()
    assert refused.value.status_code == 401


def test_an_admin_creates_a_token_in_the_console_that_the_api_then_accepts(
    backend_api: RealBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _console(backend_api, monkeypatch, "admin")
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.TOKENS].file)).run()
    assert not at.error, [e.value for e in at.error]
    at.text_input(key="token_name").input("van-2")
    at.selectbox(key="token_role").set_value("outreach")
    at.text_input(key="token_expires").input("90d")
    at.button[0].click().run()
    assert not at.error, [e.value for e in at.error]
    secret = at.code[0].value
    with ApiClient(backend_api.url, token=secret) as van:
        me = van.me()
    assert (me.name, me.role) == ("van-2", "outreach")


def test_what_outreach_does_in_the_console_shows_in_the_admins_audit_trail(
    backend_api: RealBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _console(backend_api, monkeypatch, "outreach")
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.ALERTS].file)).run()
    at.button(key="alerts_ack").click().run()
    assert "acknowledged" in at.success[0].value
    admin = _console(backend_api, monkeypatch, "admin")
    admin.switch_page(str(navigation.PAGE_SPECS[PageKey.AUDIT].file)).run()
    admin.text_input(key="audit_actor").input("outreach-north").run()
    assert not admin.error, [e.value for e in admin.error]
    table = admin.dataframe[0].value
    assert list(table["what"]) == ["alert.acknowledge"]
    assert list(table["who"]) == ["outreach-north"]


def test_an_admin_adds_a_route_sends_a_test_and_sees_the_delivery(
    backend_api: RealBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _console(backend_api, monkeypatch, "admin")
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.NOTIFICATIONS].file)).run()
    assert not at.exception, at.exception
    at.text_input(key="route_name").input("outreach-hook")
    at.text_input(key="route_target").input("https://hooks.example/naloxnet?token=abc")
    at.multiselect(key="route_types").select("empty_slot")
    at.text_input(key="route_secret").input("a-secret-of-sixteen-or-more")
    at.button[0].click().run()  # the form's submit button
    assert not at.error, [e.value for e in at.error]
    assert "outreach-hook" in at.success[0].value
    routes = at.dataframe[0].value  # the routes; no deliveries yet
    assert list(routes["name"]) == ["outreach-hook"]
    assert list(routes["to"]) == ["https://hooks.example"]  # no path, no token
    assert list(routes["types"]) == ["empty_slot"]
    at.button(key="FormSubmitter:route_actions-Send a test message").click().run()
    assert not at.error, [e.value for e in at.error]
    assert "Test message queued" in at.success[0].value
    deliveries = at.dataframe[1].value
    assert list(deliveries["event"]) == ["test"]
    assert list(deliveries["state"]) == ["pending"]  # no dispatcher runs in this test


def test_a_bad_route_is_reported_and_outreach_has_no_notifications_page(
    backend_api: RealBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _console(backend_api, monkeypatch, "admin")
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.NOTIFICATIONS].file)).run()
    at.text_input(key="route_name").input("bad")
    at.text_input(key="route_target").input("ftp://nowhere")
    at.button[0].click().run()
    assert "The route was not added" in at.error[0].value
    assert "http" in at.error[0].value
    outreach = _console(backend_api, monkeypatch, "outreach")
    assert PageKey.NOTIFICATIONS not in _listed_pages(outreach)


def test_an_admins_planogram_is_pending_until_the_machine_answers_then_adopted(
    backend_api: RealBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "make_client",
                        lambda t: ApiClient(backend_api.url, token=t, timeout_s=HTTP_TIMEOUT_S))
    monkeypatch.setattr(session, "preset_token", lambda: backend_api.tokens["admin"])
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()
    at.switch_page(str(navigation.PAGE_SPECS[PageKey.ADMIN].file)).run()
    at.selectbox(key="admin_machine").set_value("phl-002").run()
    with ApiClient(backend_api.url, token=backend_api.tokens["admin"]) as admin:
        slot = admin.machine("phl-002").slots[0]
        new_par = (slot.par or slot.capacity or 2) - 1
        at.number_input(key=f"admin_pg_phl-002_{slot.slot}_par").set_value(new_par)
        at.button(key="FormSubmitter:admin_planogram_phl-002-Send planogram to the machine"
                  ).click().run()
        assert not at.error, [e.value for e in at.error]
        assert any(s.value == "Commands (1 pending)" for s in at.subheader)
        [command] = admin.commands("phl-002").data
        assert admin.machine("phl-002").slots[0].par == slot.par  # not before the answer
        # The machine's answer, through the ingest writer as a worker stores it.
        engine = make_engine(backend_api.database_url)
        answer = payloads.CommandResult(command_id=command.command_id, ok=True)
        try:
            with Session(engine) as db:
                BatchWriter(default_low_threshold=2).write(db, [Message(
                    "nx/v1/machines/phl-002/cmd/result", answer.to_bytes(), utcnow())], utcnow())
                db.commit()
        finally:
            engine.dispose()
        at.run()
        assert any(s.value == "Commands (0 pending)" for s in at.subheader)
        assert admin.machine("phl-002").slots[0].par == new_par
