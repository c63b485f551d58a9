"""Every error is RFC 9457 problem details; the OpenAPI document names every status."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session

from backend import crud
from backend.app import create_app
from backend.config import Settings
from tests.backend.conftest import AuthHeaders, register
from tests.http_server import serve_http

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}
SECRET = "db-password-hunter2"


@pytest.fixture
def client(migrated_url: str, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    """An admin's client of the API over real HTTP."""
    settings = Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10, headers=auth_headers("admin")) as http:
        yield http


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["instance"] == response.request.url.path
    return body  # type: ignore[no-any-return]


def test_routing_errors_are_problems(client: httpx.Client) -> None:
    assert _problem(client.get("/api/v1/nothing-here"), 404)["title"] == "Not Found"
    wrong_method = client.delete("/healthz")
    _problem(wrong_method, 405)
    assert wrong_method.headers["allow"] == "GET"


def test_handler_errors_are_problems(client: httpx.Client, session: Session) -> None:
    missing = _problem(client.get("/api/v1/machines/nope-000"), 404)
    assert "nope-000" in str(missing["detail"])  # the console shows `detail`
    register(session, "test-001", count=1)  # below the threshold: a low-stock alert
    alert = client.get("/api/v1/alerts").json()["data"][0]
    assert client.post(f"/api/v1/alerts/{alert['id']}/resolve").status_code == 200
    conflict = _problem(client.post(f"/api/v1/alerts/{alert['id']}/acknowledge"), 409)
    assert "resolved" in str(conflict["detail"])


def test_invalid_input_is_a_422_problem_naming_each_field(client: httpx.Client) -> None:
    body = _problem(client.get("/api/v1/alerts", params={"status": "bogus", "limit": 0}), 422)
    errors = body["errors"]
    assert isinstance(errors, list)
    assert sorted(tuple(e["loc"]) for e in errors) == [("query", "limit"), ("query", "status")]
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)  # the input is not echoed
    assert "query.status" in str(body["detail"]) or "query.limit" in str(body["detail"])


def test_401_and_403_are_problems_and_401_keeps_its_challenge(
    client: httpx.Client, auth_headers: AuthHeaders
) -> None:
    anonymous = client.get("/api/v1/machines", headers={"Authorization": ""})
    _problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="naloxnet"'
    bad = client.get("/api/v1/machines", headers={"Authorization": "Bearer nxt_nonsense"})
    _problem(bad, 401)
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    _problem(client.get("/api/v1/tokens", headers=auth_headers("health")), 403)


@pytest.mark.allow_logged_errors
def test_unexpected_error_is_a_bare_500_logged_once(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(**_: object) -> None:
        raise RuntimeError(f"connection to postgres://nx:{SECRET}@db failed")

    monkeypatch.setattr(crud, "list_alerts", explode)
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.ERROR)
    # uvicorn's loggers do not propagate to the root: listen to both.
    watched = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in watched:
        logger.addHandler(handler)
    try:
        response = client.get("/api/v1/alerts")
        # The server is still up and answers the next request.
        assert client.get("/healthz").status_code == 200
    finally:
        for logger in watched:
            logger.removeHandler(handler)
    body = _problem(response, 500)
    assert SECRET not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert body["title"] == "Internal Server Error"
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].name.startswith("backend.")
    assert records[0].exc_info is not None  # the stack trace is in the log, not the body


def test_openapi_documents_every_error_as_a_problem(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    assert "Problem" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert statuses("/api/v1/alerts/{alert_id}/acknowledge", "post") >= {
        "200", "401", "403", "404", "409", "413", "415", "422"}
    assert statuses("/api/v1/alerts/{alert_id}/resolve", "post") >= {"404", "422", "415"}
    assert statuses("/api/v1/machines/{machine_id}", "get") >= {"200", "401", "404", "422"}
    assert statuses("/api/v1/machines/{machine_id}/restock-visits", "post") >= {
        "201", "400", "404", "413", "415", "422"}
    assert statuses("/api/v1/machines", "get") >= {"200", "401", "422"}
    assert statuses("/healthz", "get") == {"200", "503"}
    for item in paths.values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and status != "503":
                    assert set(response["content"]) == {"application/problem+json"}
                    assert response["content"]["application/problem+json"]["schema"] == {
                        "$ref": "#/components/schemas/Problem"}
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(metrics) == {"text/plain"}
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
