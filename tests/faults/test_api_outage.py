"""A database that cannot be reached is a 503 with problem details, not a 500.

Runs anywhere (no PostgreSQL server needed): the token check reads the real
SQLite database, while the routes' sessions are pointed at a PostgreSQL
address where nothing listens, so every query a route makes fails the way it
does while PostgreSQL restarts. tests/faults/test_postgres_faults.py does the
same with a real server whose connections are killed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from backend.api.deps import get_session, get_write_session
from backend.api.problems import database_unavailable
from backend.app import create_app
from backend.config import Settings
from backend.db import make_engine, migrate
from simulators.broker import free_port
from tests.backend.conftest import bearer, make_token
from tests.http_server import serve_http

pytest.importorskip("psycopg")


@pytest.fixture
def unreachable() -> Iterator[Engine]:
    """An engine on a PostgreSQL port where nothing listens (refused at once)."""
    engine = make_engine(
        f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/gone?connect_timeout=2")
    yield engine
    engine.dispose()


@pytest.fixture
def client(tmp_path: Path, unreachable: Engine) -> Iterator[httpx.Client]:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    token = make_token(url, "admin")
    app = create_app(Settings(environment="test", database_url=url))

    def dead_session() -> Iterator[Session]:
        with Session(unreachable) as session:
            yield session

    app.dependency_overrides[get_session] = dead_session
    app.dependency_overrides[get_write_session] = dead_session
    with serve_http(app) as base, httpx.Client(
            base_url=base, timeout=60, headers=bearer(token)) as http:
        yield http


def _is_outage_problem(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["status"] == 503
    assert body["title"] == "Service Unavailable"
    assert "unavailable" in body["detail"]
    assert body["instance"] == response.request.url.path
    assert "psycopg" not in response.text  # no driver message, no host or user


def test_reads_and_writes_answer_503_while_the_database_is_away(client: httpx.Client) -> None:
    _is_outage_problem(client.get("/api/v1/machines/test-001"))
    _is_outage_problem(client.get("/api/v1/alerts"))
    _is_outage_problem(client.post("/api/v1/visits", json={
        "machine_id": "test-001", "slots": [{"slot": 1, "count_after": 3}]}))


def test_every_authenticated_route_documents_the_503(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, item in paths.items():
        for method, operation in item.items():
            if path.startswith(("/public/", "/healthz")):
                continue
            assert "503" in operation["responses"], (method, path)


def test_bugs_are_not_mistaken_for_outages() -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    assert database_unavailable(OperationalError("SELECT 1", {}, Exception("gone")))
    assert not database_unavailable(IntegrityError("INSERT", {}, Exception("dup")))
    assert not database_unavailable(ProgrammingError("SELEC", {}, Exception("syntax")))
    invalidated = ProgrammingError("SELECT 1", {}, Exception("closed"),
                                   connection_invalidated=True)
    assert database_unavailable(invalidated)
