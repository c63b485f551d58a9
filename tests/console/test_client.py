"""The console's API client against a real HTTP server speaking the contract."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from console.api_models import AlertStatus, Health, Presence
from console.client import (
    ApiClient,
    ApiError,
    ApiUnavailableError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
)
from console.settings import ConsoleSettings
from simulators.broker import free_port
from tests.console.fake_api import FakeState, plan_json, stop_json


def test_all_machines_follows_pages_until_the_count(fake_api: str, fake_state: FakeState) -> None:
    with ApiClient(fake_api, page_size=2) as client:
        machines = client.all_machines()
    assert [m.id for m in machines] == [f"test-00{n}" for n in range(1, 6)]
    offsets = [p["offset"] for path, p, _ in fake_state.requests if path == "/api/v1/machines"]
    assert offsets == ["0", "2", "4"]
    assert machines[2].health is Health.EMPTY
    assert machines[3].status is Presence.OFFLINE
    assert machines[4].lat is None
    assert machines[0].slots[0].product == "naloxone-nasal-4mg"


def test_machine_detail_and_unknown_machine(fake_api: str) -> None:
    with ApiClient(fake_api) as client:
        detail = client.machine("test-002")
        assert detail.health is Health.LOW_STOCK
        assert detail.recent_events[0]["kind"] == "vend"
        with pytest.raises(NotFoundError, match="test-999 is not registered") as caught:
            client.machine("test-999")
    assert caught.value.status_code == 404


def test_alert_filters_reach_the_server(fake_api: str, fake_state: FakeState) -> None:
    with ApiClient(fake_api) as client:
        open_alerts = client.alerts()
        acked = client.alerts(status=AlertStatus.ACKNOWLEDGED)
        by_machine = client.alerts(status=None, machine_id="test-003", alert_type="empty_slot")
    assert {a.id for a in open_alerts.data} == {1, 2}
    assert [a.id for a in acked.data] == [3]
    assert [a.id for a in by_machine.data] == [2]
    last = [p for path, p, _ in fake_state.requests if path == "/api/v1/alerts"][-1]
    assert last == {"status": "", "type": "empty_slot", "machine_id": "test-003"}


def test_acknowledge_and_resolve_change_the_alert_as_the_token_holder(
    fake_api: str, fake_state: FakeState
) -> None:
    north = fake_state.add_identity("outreach-north", "outreach")
    south = fake_state.add_identity("outreach-south", "outreach")
    with ApiClient(fake_api, token=north) as client:
        client.acknowledge_alert(1)
        acked = client.alerts(status=AlertStatus.ACKNOWLEDGED).data
        assert [a.id for a in acked] == [1, 3]
        assert acked[0].acted_by == "outreach-north"
        assert acked[0].acknowledged_at is not None
    with ApiClient(fake_api, token=south) as client:
        client.resolve_alert(1)
        resolved = client.alerts(status=AlertStatus.RESOLVED).data
        assert [a.id for a in resolved] == [1]
        assert resolved[0].acted_by == "outreach-south"
        with pytest.raises(ApiError, match=r"409.*already resolved"):
            client.resolve_alert(1)
    # Who acted comes from the token alone: the console sends an empty JSON object.
    assert [body for _, _, body in fake_state.actions] == [{}, {}, {}]


def test_token_from_settings_is_sent_as_bearer(fake_api: str, fake_state: FakeState) -> None:
    settings = ConsoleSettings(api_url=fake_api + "/", api_token=SecretStr("s3cret"))
    with ApiClient.from_settings(settings) as client:
        client.list_machines()
    assert fake_state.requests[-1][2] == "Bearer s3cret"


def test_contract_breach_is_a_clear_error(fake_api: str, fake_state: FakeState) -> None:
    fake_state.broken_machine_list = True
    with ApiClient(fake_api) as client, pytest.raises(ApiError, match="invalid machine list"):
        client.all_machines()


def test_unreachable_api_is_reported_not_raised_raw() -> None:
    with ApiClient(f"http://127.0.0.1:{free_port()}", timeout_s=2) as client:
        assert client.healthy() is False
        with pytest.raises(ApiUnavailableError, match="cannot reach the API"):
            client.all_machines()


def test_healthy_when_healthz_answers(fake_api: str) -> None:
    with ApiClient(fake_api) as client:
        assert client.healthy() is True


def test_hotspots_arrive_as_geojson_areas(fake_api: str) -> None:
    with ApiClient(fake_api) as client:
        collection = client.hotspots()
    assert len(collection.features) == 1
    feature = collection.features[0]
    assert feature.geometry.coordinates == (-75.123, 39.992)
    assert feature.properties["p_value"] == 0.01


def test_a_restock_visit_is_posted_with_string_slot_keys(
    fake_api: str, fake_state: FakeState
) -> None:
    token = fake_state.add_identity("outreach-north", "outreach")
    with ApiClient(fake_api, token=token) as client:
        visit = client.record_restock_visit("test-003", {1: 8, 2: 10})
        assert visit.machine_id == "test-003"
        assert visit.visited_by == "outreach-north"
        assert visit.counts == {"1": 8, "2": 10}
        assert [s.count for s in client.machine("test-003").slots] == [8, 10]
        with pytest.raises(NotFoundError):
            client.record_restock_visit("test-999", {1: 1})
    assert fake_state.visits[0][1] == {"counts": {"1": 8, "2": 10}}  # no client-sent "who"


def test_the_plan_request_carries_the_shift_and_the_answer_parses(
    fake_api: str, fake_state: FakeState
) -> None:
    fake_state.plan = plan_json([[stop_json(1, "test-003")]])
    start = datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    with ApiClient(fake_api) as client:
        plan = client.restock_plan(depot="39.95,-75.16", shift_start=start, shift_hours=6,
                                   vans=2)
    assert [s.machine_id for s in plan.vans[0].stops] == ["test-003"]
    assert plan.vans[0].stops[0].load[0].quantity == 8
    path, params, _ = fake_state.requests[-1]
    assert path == "/api/v1/restock/plan"
    assert params == {"depot": "39.95,-75.16", "shift_hours": "6.0", "vans": "2",
                      "shift_start": "2026-11-24T09:00:00-05:00"}


def test_a_visit_carries_its_idempotency_key_header(fake_api: str, fake_state: FakeState) -> None:
    body = {"machine_id": "test-003", "slots": [{"slot": 1, "count_after": 8}]}
    with ApiClient(fake_api) as client:
        visit = client.record_visit(body, idempotency_key="k-123")
    assert visit.counts == {"1": 8}
    assert fake_state.visit_posts == [("k-123", body)]


def test_me_names_the_principal_behind_the_token(fake_api: str, fake_state: FakeState) -> None:
    token = fake_state.add_identity("health-dept", "health", areas=("Kensington",))
    with ApiClient(fake_api, token=token) as client:
        identity = client.me()
    assert (identity.name, identity.role) == ("health-dept", "health")
    assert identity.areas == ["Kensington"]
    assert fake_state.requests == []  # me() is not a fleet read


def test_a_refused_token_is_a_clear_unauthorized_error(
    fake_api: str, fake_state: FakeState
) -> None:
    fake_state.add_identity("outreach-north", "outreach")
    for token in (None, "not-a-token"):
        with ApiClient(fake_api, token=token) as client:
            with pytest.raises(UnauthorizedError, match="unknown, expired or revoked") as caught:
                client.me()
            assert caught.value.status_code == 401
            with pytest.raises(UnauthorizedError):
                client.all_machines()
            # The secret never reaches a message a page may show.
            assert "not-a-token" not in str(caught.value)


def test_a_role_without_the_right_gets_a_forbidden_error_naming_the_call(
    fake_api: str, fake_state: FakeState
) -> None:
    token = fake_state.add_identity("health-dept", "health")
    fake_state.forbidden.add(("POST", "/api/v1/machines/test-003/restock-visits"))
    with ApiClient(fake_api, token=token) as client, pytest.raises(ForbiddenError) as caught:
        client.record_restock_visit("test-003", {1: 8})
    assert caught.value.status_code == 403
    message = str(caught.value)
    assert "your role may not do this" in message
    assert "POST /api/v1/machines/test-003/restock-visits" in message
    assert "this role may not call this route" in message  # the problem's detail
    assert fake_state.visits == []
