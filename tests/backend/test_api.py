"""The HTTP API: JSON shapes the console relies on, filters, alert actions, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from backend.app import create_app
from backend.config import Settings
from backend.db import SchemaOutOfDateError, make_engine
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import utcnow
from tests.backend.conftest import AuthHeaders, register
from tests.backend.helpers import events_topic, vend
from tests.http_server import serve_http

MACHINE_KEYS = {"id", "name", "lat", "lon", "site", "area", "status", "health", "last_seen",
                "firmware", "tags", "slots", "open_alerts"}
SLOT_KEYS = {"slot", "product", "count", "capacity", "par", "low_threshold"}
ALERT_KEYS = {"id", "type", "severity", "subject", "machine_id", "status", "opened_at",
              "acknowledged_at", "resolved_at", "acknowledged_by", "resolved_by", "acted_by",
              "message", "details"}


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)


@pytest.fixture
def client(settings: Settings, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    """The app served by uvicorn on a free port, and an HTTP client for it (as admin)."""
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10, headers=auth_headers("admin")) as http:
        yield http


def _vends(engine: Engine, machine_id: str, seqs: range) -> None:
    with Session(engine) as session:
        messages = [Message(events_topic(machine_id), vend(machine_id, s).to_bytes(), utcnow())
                    for s in seqs]
        BatchWriter(default_low_threshold=2).write(session, messages, utcnow())
        session.commit()


def test_machines_list_and_detail_shapes(
    client: httpx.Client, session: Session, engine: Engine
) -> None:
    register(session, "test-001", count=3, slots=2)
    register(session, "test-002", count=9)
    _vends(engine, "test-001", range(1, 2))  # slot 1: 3 -> 2, at the threshold
    page = client.get("/api/v1/machines", params={"limit": 10}).json()
    assert page["count"] == 2
    first = page["data"][0]
    assert set(first) == MACHINE_KEYS
    assert set(first["slots"][0]) == SLOT_KEYS
    assert (first["id"], first["status"], first["health"], first["open_alerts"]) == (
        "test-001", "unknown", "low_stock", 1)
    assert page["data"][1]["health"] == "ok"
    assert client.get("/api/v1/machines", params={"limit": 1, "offset": 1}).json()["data"][0][
        "id"] == "test-002"
    detail = client.get("/api/v1/machines/test-001").json()
    assert set(detail) >= MACHINE_KEYS | {"recent_events"}
    assert detail["recent_events"][0]["kind"] == "vend"
    missing = client.get("/api/v1/machines/nope-000")
    assert missing.status_code == 404
    assert "nope-000" in missing.json()["detail"]


def test_alert_filters_acknowledge_resolve(client: httpx.Client, session: Session,
                                           engine: Engine, auth_headers: AuthHeaders) -> None:
    register(session, "test-003", count=1)  # at/below threshold 2 already: low-stock alert
    alerts = client.get("/api/v1/alerts", params={"status": "open"}).json()
    assert alerts["count"] == 1
    alert = alerts["data"][0]
    assert set(alert) == ALERT_KEYS
    assert (alert["type"], alert["subject"]) == ("low_stock", "test-003/slot/1")
    # Who acted is the token's name; a client-sent "by" is not honoured.
    van = auth_headers("outreach", name="van-north")
    acked = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"by": "mallory"},
                        headers=van)
    assert acked.json()["status"] == "acknowledged"
    assert (acked.json()["acknowledged_by"], acked.json()["acted_by"]) == ("van-north",
                                                                           "van-north")
    assert client.get("/api/v1/alerts", params={"status": "open"}).json()["count"] == 0
    # Still active: the slot emptying opens an empty-slot alert, not a second low-stock one.
    _vends(engine, "test-003", range(1, 2))
    by_type = client.get("/api/v1/alerts", params={"machine_id": "test-003"}).json()
    assert sorted(a["type"] for a in by_type["data"]) == ["empty_slot", "low_stock"]
    resolved = client.post(f"/api/v1/alerts/{alert['id']}/resolve")
    assert resolved.json()["status"] == "resolved"
    assert (resolved.json()["acknowledged_by"], resolved.json()["resolved_by"],
            resolved.json()["acted_by"]) == ("van-north", "test-admin", "test-admin")
    assert client.post(f"/api/v1/alerts/{alert['id']}/acknowledge").status_code == 409
    assert client.post("/api/v1/alerts/999999/resolve").status_code == 404
    assert client.get("/api/v1/alerts", params={"status": "bogus"}).status_code == 422


def test_restock_visit_resolves_stock_alerts(client: httpx.Client, session: Session,
                                             auth_headers: AuthHeaders) -> None:
    register(session, "test-004", count=0)
    assert client.get("/api/v1/alerts", params={"status": "open"}).json()["count"] == 2
    visit = client.post("/api/v1/machines/test-004/restock-visits",
                        json={"counts": {"1": 10}, "counted_before": {"1": 1},
                              "visited_by": "team-a"},
                        headers=auth_headers("outreach", name="van-south"))
    assert visit.status_code == 201
    assert visit.json()["visited_by"] == "van-south"  # the principal, not the body
    assert client.get("/api/v1/alerts", params={"status": "open"}).json()["count"] == 0
    slots = client.get("/api/v1/machines/test-004").json()["slots"]
    assert slots[0]["count"] == 10


def test_health_and_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    client.get("/api/v1/machines")
    client.get("/api/v1/machines/nope-000")
    text = client.get("/metrics").text
    assert "nx_api_requests_total" in text
    # Labelled by the full route template, not the router's own path.
    assert 'route="/api/v1/machines",status="200"' in text
    assert 'route="/api/v1/machines/{machine_id}",status="404"' in text


def test_app_refuses_an_unmigrated_database(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    with pytest.raises(SchemaOutOfDateError, match="nx-backend migrate"):
        create_app(Settings(environment="test", database_url=url), engine=make_engine(url))


def test_openapi_docs(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    assert "/api/v1/alerts" in client.get("/openapi.json").json()["paths"]


def test_hotspots_route_is_mounted(client: httpx.Client) -> None:
    body = client.get("/api/v1/hotspots").json()
    assert body["type"] == "FeatureCollection"


def test_list_and_detail_agree(client: httpx.Client, session: Session) -> None:
    register(session, "test-006", count=5, slots=3)
    listed = client.get("/api/v1/machines").json()["data"][0]
    detail = client.get("/api/v1/machines/test-006").json()
    assert {k: detail[k] for k in MACHINE_KEYS if k != "last_seen"} == {
        k: listed[k] for k in MACHINE_KEYS if k != "last_seen"}
