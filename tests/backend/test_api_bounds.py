"""Integers are bounded where they enter: too large or negative is a 422, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session, select

from backend.app import create_app
from backend.config import Settings
from backend.models import Alert, RestockVisit, Slot, StockDiscrepancy
from tests.backend.conftest import AuthHeaders, register
from tests.backend.helpers import fresh
from tests.http_server import serve_http

HUGE = 9703298992782261604346021582557151232  # what schemathesis first sent
INT64_MAX = 2**63 - 1


@pytest.fixture
def client(migrated_url: str, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    """An admin's client of the API over real HTTP."""
    settings = Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10, headers=auth_headers("admin")) as http:
        yield http


def _refused(response: httpx.Response, field: str) -> str:
    """Assert a 422 problem naming ``field``; return its detail."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert any(field in map(str, error["loc"]) for error in body["errors"]), body
    return str(body["detail"])


@pytest.mark.parametrize("offset", [HUGE, 2**63, -1])
def test_offsets_out_of_range_are_refused(client: httpx.Client, offset: int) -> None:
    for path in ("/api/v1/machines", "/api/v1/alerts"):
        _refused(client.get(path, params={"offset": offset}), "offset")


def test_the_largest_offset_reaches_the_database(client: httpx.Client, session: Session) -> None:
    register(session, "test-001", count=1)
    for path in ("/api/v1/machines", "/api/v1/alerts"):
        page = client.get(path, params={"offset": INT64_MAX})
        assert page.status_code == 200, page.text
        body = page.json()
        assert (body["data"], body["count"]) == ([], 1)


@pytest.mark.parametrize("alert_id", [2**31, 2**63, HUGE, 0, -1])
def test_alert_ids_out_of_range_are_refused(client: httpx.Client, alert_id: int) -> None:
    for action in ("acknowledge", "resolve"):
        _refused(client.post(f"/api/v1/alerts/{alert_id}/{action}"), "alert_id")


@pytest.mark.parametrize("route_id", [2**31, 2**63, 0])
def test_notification_route_ids_out_of_range_are_refused(
    client: httpx.Client, route_id: int
) -> None:
    _refused(client.get(f"/api/v1/notification-routes/{route_id}"), "route_id")
    _refused(client.get("/api/v1/notifications", params={"route_id": route_id}), "route_id")


def test_the_largest_alert_id_is_a_404(client: httpx.Client) -> None:
    assert client.post(f"/api/v1/alerts/{2**31 - 1}/resolve").status_code == 404


@pytest.mark.parametrize("machine_id", ["a%00b", "UPPER", "x" * 64])
def test_malformed_machine_ids_are_refused(client: httpx.Client, machine_id: str) -> None:
    _refused(client.get(f"/api/v1/machines/{machine_id}"), "machine_id")
    _refused(client.get("/api/v1/alerts", params={"machine_id": machine_id.replace("%00", "\0")}),
             "machine_id")


def _visit(client: httpx.Client, body: dict[str, object]) -> httpx.Response:
    return client.post("/api/v1/machines/test-001/restock-visits", json=body)


def _unchanged(session: Session, count: int) -> None:
    """Nothing of a refused visit was written."""
    fresh(session)
    assert session.exec(select(Slot.count)).all() == [count]
    assert session.exec(select(RestockVisit)).all() == []
    assert session.exec(select(StockDiscrepancy)).all() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"counts": {str(2**63): 1}}, "counts"),
    ({"counts": {"0": 1}}, "counts"),
    ({"counts": {"1": 2**63}}, "counts"),
    ({"counts": {"1": -1}}, "counts"),
    ({"counts": {"1": 5}, "counted_before": {"1": -1}}, "counted_before"),
    ({"counts": {"1": 5}, "counted_before": {"1": 2**63}}, "counted_before"),
    ({"counts": {"1": 5}, "counted_before": {str(2**63): 1}}, "counted_before"),
])
def test_restock_visit_numbers_out_of_range_are_refused(
    client: httpx.Client, session: Session, body: dict[str, object], field: str
) -> None:
    register(session, "test-001", count=3, capacity=10_000)
    _refused(_visit(client, body), field)
    _unchanged(session, 3)


def test_restock_count_above_capacity_is_refused(client: httpx.Client, session: Session) -> None:
    register(session, "test-001", count=3, capacity=10_000)
    _refused(_visit(client, {"counts": {"1": INT64_MAX}}), "counts")  # past any INTEGER column
    for count in (2**31 - 1, 10_001):
        response = _visit(client, {"counts": {"1": count}, "counted_before": {"1": 2}})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "at most 10000" in response.json()["detail"]
        _unchanged(session, 3)
    assert session.exec(select(Alert.status)).all() == []
    assert _visit(client, {"counts": {"1": 10_000}}).status_code == 201
    fresh(session)
    assert session.exec(select(Slot.count)).all() == [10_000]
