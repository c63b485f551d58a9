"""PATCH /api/v1/machines/{id}/public-listing: admins only, audited, and the feed follows."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from backend.app import create_app
from backend.config import Settings
from backend.models import AuditRecord
from tests.backend.conftest import AuthHeaders, register
from tests.http_server import serve_http
from tests.waiting import wait_until

LISTING = "/api/v1/machines/{}/public-listing"


@pytest.fixture
def client(migrated_url: str) -> Iterator[httpx.Client]:
    settings = Settings(environment="test", database_url=migrated_url, public_feed_cache_s=0.05)
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10) as http:
        yield http


def _feed_names(client: httpx.Client) -> list[str]:
    return [m["name"] for m in client.get("/public/v1/machines").json()["machines"]]


def test_admin_lists_changes_and_unlists_a_machine(
    client: httpx.Client, engine: Engine, auth_headers: AuthHeaders
) -> None:
    with Session(engine) as session:
        register(session, "test-001")
    admin = auth_headers("admin", name="ops-admin")
    listed = client.patch(LISTING.format("test-001"), headers=admin,
                          json={"public_name": " Harbour Clinic ", "opening_hours": "24/7"})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    public_id = body["public_id"]
    assert body == {"machine_id": "test-001", "public_id": public_id,
                    "public_name": "Harbour Clinic", "opening_hours": "24/7",
                    "in_service": True, "listed": True}
    wait_until(lambda: _feed_names(client) == ["Harbour Clinic"], what="the feed to list it")
    away = client.patch(LISTING.format("test-001"), headers=admin, json={"in_service": False})
    assert away.json()["listed"] is False
    assert away.json()["opening_hours"] == "24/7"  # fields not sent stay as they were
    wait_until(lambda: _feed_names(client) == [], what="the feed to drop it")
    back = client.patch(LISTING.format("test-001"), headers=admin,
                        json={"in_service": True, "opening_hours": None})
    assert (back.json()["listed"], back.json()["opening_hours"]) == (True, None)
    gone = client.patch(LISTING.format("test-001"), headers=admin, json={"public_name": None})
    assert (gone.json()["listed"], gone.json()["public_id"]) == (False, public_id)
    with Session(engine) as session:
        records = session.exec(select(AuditRecord).where(
            AuditRecord.action == "machine.public_listing").order_by(AuditRecord.id)).all()
    assert [r.actor for r in records] == ["ops-admin"] * 4
    assert records[0].before is not None
    assert records[0].after is not None
    assert (records[0].before["public_name"], records[0].after["public_name"]) == (
        None, "Harbour Clinic")
    assert all(r.request_id for r in records)


def test_only_admins_and_bad_input_is_refused(
    client: httpx.Client, engine: Engine, auth_headers: AuthHeaders
) -> None:
    with Session(engine) as session:
        register(session, "test-001", area="north")
    url = LISTING.format("test-001")
    body = {"public_name": "Harbour Clinic"}
    assert client.patch(url, json=body).status_code == 401
    for role in ("outreach", "health", "provisioning"):
        assert client.patch(url, headers=auth_headers(role), json=body).status_code == 403
    admin = auth_headers("admin")
    assert client.patch(LISTING.format("nope-001"), headers=admin, json=body).status_code == 404
    southern = auth_headers("admin", areas=["south"])
    assert client.patch(url, headers=southern, json=body).status_code == 404
    for bad in ({"public_name": "two\nlines"}, {"public_name": ""}, {"public_name": "   "},
                {"public_name": "a\u2028b"}, {"opening_hours": "a\x85b"},
                {"public_name": "x" * 121},
                {"opening_hours": "y" * 201}, {"in_service": None}, {"public_nmae": "typo"}):
        response = client.patch(url, headers=admin, json=bad)
        assert response.status_code == 422, (bad, response.text)
    assert _feed_names(client) == []
    with Session(engine) as session:
        assert session.exec(select(AuditRecord).where(
            AuditRecord.action == "machine.public_listing")).all() == []
