"""/api/v1/notification-routes and /api/v1/notifications over real HTTP, as admin."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from backend.app import create_app
from backend.config import Settings
from backend.models import AuditRecord
from backend.notify.dispatcher import Dispatcher
from backend.notify.signing import verify
from tests.backend.conftest import AuthHeaders
from tests.http_server import serve_http
from tests.notify_receiver import webhook_receiver
from tests.waiting import wait_until

SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return Settings(environment="test", database_url=migrated_url, notify_poll_s=0.02)


@pytest.fixture
def client(settings: Settings, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10, headers=auth_headers("admin")) as http:
        yield http


def _create(http: httpx.Client, **body: object) -> dict[str, object]:
    values: dict[str, object] = {"name": "ops", "channel": "webhook",
                                 "target": "https://hooks.example/x?token=abc", "secret": SECRET}
    values.update(body)
    response = http.post("/api/v1/notification-routes", json=values)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def test_route_crud_never_shows_the_secret_or_the_full_target(
    client: httpx.Client, engine: Engine
) -> None:
    route = _create(client, alert_types=["empty_slot"], min_severity="warning",
                    areas=["north"], timeout_s=3)
    assert route["destination"] == "https://hooks.example"
    assert route["secret_set"] is True
    assert "secret" not in route
    assert "target" not in route
    assert (route["alert_types"], route["min_severity"], route["areas"]) == (
        ["empty_slot"], "warning", ["north"])
    listed = client.get("/api/v1/notification-routes").json()
    assert listed["count"] == 1
    assert "abc" not in json.dumps(listed)
    assert SECRET not in json.dumps(listed)
    path = f"/api/v1/notification-routes/{route['id']}"
    changed = client.patch(path, json={"enabled": False, "min_severity": "critical"}).json()
    assert (changed["enabled"], changed["min_severity"]) == (False, "critical")
    assert client.get(path).json()["enabled"] is False
    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404
    with Session(engine) as session:
        actions = [r.action for r in session.exec(select(AuditRecord)).all()
                   if r.object_type == "notification_route"]
        trail = json.dumps([r.model_dump(mode="json") for r in session.exec(
            select(AuditRecord)).all()])
    assert actions == ["notification_route.create", "notification_route.update",
                       "notification_route.delete"]
    assert SECRET not in trail
    assert "token=abc" not in trail


@pytest.mark.parametrize(("body", "why"), [
    ({"channel": "webhook", "target": "ftp://x"}, "http"),
    ({"channel": "email", "target": "not-an-address"}, "address"),
    ({"channel": "apprise", "target": "nothing"}, "Apprise"),
    ({"alert_types": ["no_such_type"]}, "alert_types"),
    ({"min_severity": "urgent"}, "min_severity"),
    ({"secret": "short"}, "secret"),
    ({"timeout_s": 600}, "timeout_s"),
])
def test_bad_routes_are_refused_clearly(client: httpx.Client, body: dict[str, object],
                                        why: str) -> None:
    values: dict[str, object] = {"name": "bad", "channel": "webhook",
                                 "target": "https://hooks.example/x"}
    values.update(body)
    response = client.post("/api/v1/notification-routes", json=values)
    assert response.status_code == 422
    assert why in response.text
    assert client.get("/api/v1/notification-routes").json()["count"] == 0


def test_a_taken_name_conflicts(client: httpx.Client) -> None:
    _create(client)
    response = client.post("/api/v1/notification-routes",
                           json={"name": "ops", "channel": "webhook", "target": "http://h/x"})
    assert response.status_code == 409


def test_a_test_message_arrives_signed_and_is_listed(
    client: httpx.Client, engine: Engine, settings: Settings
) -> None:
    with webhook_receiver(fail_first=1) as hook:
        route = _create(client, target=hook.url)
        queued = client.post(f"/api/v1/notification-routes/{route['id']}/test")
        assert queued.status_code == 202
        delivery_id = queued.json()["delivery_id"]
        dispatcher = Dispatcher(engine, settings.model_copy(update={
            "notify_backoff_base_s": 0.01, "notify_backoff_max_s": 0.02}))
        dispatcher.start()
        try:
            wait_until(lambda: len(hook.delivered()) == 1, what="the test message")
            wait_until(lambda: client.get("/api/v1/notifications").json()["data"][0]["state"]
                       == "delivered", what="the delivered state")
        finally:
            dispatcher.stop()
        got = hook.delivered()[0]
        assert got.headers["x-naloxnet-delivery"] == delivery_id
        assert verify(SECRET, got.headers["x-naloxnet-signature"], got.body, now=time.time())
        assert json.loads(got.body)["event"] == "test"
        [listed] = client.get("/api/v1/notifications",
                              params={"route_id": route["id"]}).json()["data"]
        assert (listed["attempts"], listed["last_error"]) == (2, None)
        failed = client.get("/api/v1/notifications", params={"state": "failed"}).json()
        assert failed["count"] == 0


def test_non_admins_cannot_see_or_change_routes(client: httpx.Client,
                                                auth_headers: AuthHeaders) -> None:
    for role in ("outreach", "health", "provisioning"):
        headers = auth_headers(role)
        assert client.get("/api/v1/notification-routes", headers=headers).status_code == 403
        assert client.get("/api/v1/notifications", headers=headers).status_code == 403
        assert client.post("/api/v1/notification-routes", headers=headers,
                           json={"name": "x", "channel": "webhook",
                                 "target": "http://h/x"}).status_code == 403


@pytest.mark.parametrize(("channel", "target"), [
    ("apprise", "ntfy://naloxnet-outreach"),
    ("apprise", "json://127.0.0.1:9/hook"),
    ("email", "lead@health.example, oncall@health.example"),
])
def test_email_and_apprise_routes_are_accepted(client: httpx.Client, channel: str,
                                               target: str) -> None:
    route = _create(client, name=f"r-{channel}", channel=channel, target=target, secret=None)
    assert route["channel"] == channel
    assert route["secret_set"] is False


def test_escalation_and_quiet_hours_are_set_and_checked(client: httpx.Client) -> None:
    lead = _create(client, name="lead")
    route = _create(client, name="van", escalate_after_min=15,
                    escalate_to_route_id=lead["id"], quiet_start="22:00", quiet_end="07:00",
                    quiet_tz="America/New_York")
    assert (route["escalate_after_min"], route["escalate_to_route_id"]) == (15, lead["id"])
    assert (route["quiet_start"], route["quiet_end"], route["quiet_tz"]) == (
        "22:00", "07:00", "America/New_York")
    base = {"channel": "webhook", "target": "https://hooks.example/x"}
    for body, code, why in [
        ({"escalate_after_min": 5}, 422, "go together"),
        ({"quiet_start": "22:00"}, 422, "go together"),
        ({"quiet_start": "25:00", "quiet_end": "07:00"}, 422, "quiet_start"),
        ({"quiet_start": "22:00", "quiet_end": "07:00", "quiet_tz": "Mars/Olympus"}, 422,
         "time zone"),
        ({"escalate_after_min": 5, "escalate_to_route_id": 999}, 409, "does not exist"),
    ]:
        response = client.post("/api/v1/notification-routes",
                               json={"name": "bad", **base, **body})
        assert response.status_code == code, (body, response.text)
        assert why in response.text
    path = f"/api/v1/notification-routes/{lead['id']}"
    response = client.patch(path, json={"escalate_after_min": 5,
                                        "escalate_to_route_id": lead["id"]})
    assert response.status_code == 409
    assert "itself" in response.text
    assert client.get(path).json()["escalate_to_route_id"] is None
    van = f"/api/v1/notification-routes/{route['id']}"
    assert client.patch(van, json={"quiet_end": None}).status_code == 422
    off = client.patch(van, json={"quiet_start": None, "quiet_end": None}).json()
    assert (off["quiet_start"], off["quiet_end"]) == (None, None)


def test_a_polygon_route_is_kept_and_a_bad_one_refused(client: httpx.Client) -> None:
    box = {"type": "Polygon",
           "coordinates": [[[-75.3, 39.9], [-75.1, 39.9], [-75.1, 40.1], [-75.3, 39.9]]]}
    route = _create(client, polygon=box)
    assert route["polygon"] == box
    bad = {**box, "coordinates": [[[-75.3, 39.9], [-75.1, 39.9], [-75.1, 40.1]]]}
    response = client.patch(f"/api/v1/notification-routes/{route['id']}", json={"polygon": bad})
    assert response.status_code == 422
    assert "four positions" in response.text
    response = client.post("/api/v1/notification-routes",
                           json={"name": "p2", "channel": "webhook",
                                 "target": "http://h/x", "polygon": {"type": "Point"}})
    assert response.status_code == 422


def test_time_of_day_routing_is_set_and_checked(client: httpx.Client) -> None:
    route = _create(client, active_from="20:00", active_until="08:00", active_days=[4, 5])
    assert (route["active_from"], route["active_until"], route["active_days"]) == (
        "20:00", "08:00", [4, 5])
    path = f"/api/v1/notification-routes/{route['id']}"
    for body in ({"active_until": None}, {"active_days": [7]}, {"active_days": None},
                 {"active_from": "24:00"}):
        response = client.patch(path, json=body)
        assert response.status_code == 422, (body, response.text)
    assert client.get(path).json()["active_days"] == [4, 5]
    off = client.patch(path, json={"active_from": None, "active_until": None,
                                   "active_days": []}).json()
    assert (off["active_from"], off["active_until"], off["active_days"]) == (None, None, [])


def test_a_route_keeps_its_machine_tags_and_refuses_bad_ones(client: httpx.Client) -> None:
    route = _create(client, machine_tags=["mobile", "pilot"])
    assert route["machine_tags"] == ["mobile", "pilot"]
    path = f"/api/v1/notification-routes/{route['id']}"
    for body in ({"machine_tags": ["Not A Tag"]}, {"machine_tags": None}):
        assert client.patch(path, json=body).status_code == 422, body
    assert client.patch(path, json={"machine_tags": []}).json()["machine_tags"] == []


def test_a_route_takes_the_weekly_report_by_listing_report_weekly(client: httpx.Client) -> None:
    route = _create(client, name="mayor", channel="email", target="mayor@city.example",
                    secret=None, alert_types=["report.weekly"])
    assert route["alert_types"] == ["report.weekly"]
    refused = client.post("/api/v1/notification-routes", json={
        "name": "other", "channel": "email", "target": "a@city.example",
        "alert_types": ["report.monthly"]})
    assert refused.status_code == 422
