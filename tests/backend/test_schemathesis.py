"""Schemathesis walks the OpenAPI document over real HTTP: no 5xx, every response as documented.

Each operation gets generated valid and invalid inputs (boundary values such as
2^63 included) as each caller; a response must have a documented status, the
documented content type and a body that matches the documented schema.
"""

from __future__ import annotations

import gc
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session

from backend.app import create_app
from backend.auth.principal import Role
from backend.config import Settings
from backend.db import make_engine, migrate
from tests.backend.conftest import bearer, make_token, register
from tests.http_server import serve_http
from tests.postgres import create_pg_database, drop_pg_database, postgres_unavailable

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Invalid inputs are generated too; that each is refused is not asserted: pydantic's lax
# parsing takes some that the schema's types do not (0.5 as a date-time), harmlessly.
# Who calls: no credential at all, and each role.
CALLERS = ["anonymous", *(role.value for role in Role)]


@pytest.fixture(scope="module", autouse=True)
def _frozen_heap() -> Iterator[None]:
    """Move what exists before these tests out of the collector's sight: collections stay cheap."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.fixture(autouse=True)
def _no_collection_while_drawing(_frozen_heap: None) -> Iterator[None]:
    """Keep the cyclic garbage collector from running while Hypothesis draws.

    Hypothesis parses source with ``ast.parse`` while it draws. On CPython 3.11 a
    collection inside that parse can run a finalizer that parses too (formatting
    a traceback does), which corrupts the parser's depth counter: SystemError
    "AST constructor recursion depth mismatch". What a test leaves is collected
    after it.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
    """The API over real HTTP on each database, with a machine and an open alert to act on;
    its base URL and each caller's headers."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'nx.db'}"
    else:
        reason = postgres_unavailable()
        if reason is not None:
            pytest.skip(reason)
        url = create_pg_database()
    try:
        migrate(url)
        engine = make_engine(url)
        with Session(engine) as session:
            register(session, "test-001", count=1, capacity=10_000, slots=3)
        engine.dispose()
        # Names no generated token name will hit, so the fuzzer cannot revoke them.
        headers = {"anonymous": {}} | {
            role.value: bearer(make_token(url, role.value, name=f"fuzz-{role}-{uuid.uuid4()}"))
            for role in Role
        }
        # Device routes write machine credentials to a broker password file of their own.
        password_file = tmp_path_factory.mktemp("broker") / "passwords"
        password_file.touch()
        app = create_app(Settings(environment="test", database_url=url, api_snapshot_cache_s=0,
                                  broker_password_file=password_file))
        with serve_http(app) as base:
            yield base, headers
    finally:
        if request.param == "postgres":
            drop_pg_database(url)


def _openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document (built once, at collection, from a throwaway database)."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'nx.db'}"
        migrate(url)
        engine = make_engine(url)
        try:
            return create_app(Settings(environment="test", database_url=url), engine=engine,
                              write_engine=engine).openapi()
        finally:
            engine.dispose()


schema = schemathesis.openapi.from_dict(_openapi_document())


def _call(case: schemathesis.Case, caller: str,
          served: tuple[str, dict[str, dict[str, str]]]) -> None:
    base_url, headers = served
    case.call_and_validate(base_url=base_url, headers=headers[caller], checks=CHECKS)


# Derandomised by the "ci" profile (tests/conftest.py); bounded here for every profile.
# Admin reaches every handler: the most examples. The others are mostly refused
# (401/403) or see less: fewer examples, the boundary values all the same.
@schema.parametrize()
@settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_as_admin_every_response_is_documented_and_no_5xx(
    case: schemathesis.Case, served: tuple[str, dict[str, dict[str, str]]]
) -> None:
    _call(case, Role.ADMIN.value, served)


# The others on SQLite only: who may call what, and what a scoped role sees, is decided
# in the same Python whatever the database (tests/backend/test_auth.py checks scoping on
# both); the database's own behaviour under fuzzed input is walked by admin, who reaches
# every handler, on both. On PostgreSQL these four callers cost about 7 of the suite's
# worker-minutes.
@pytest.mark.parametrize("served", ["sqlite"], indirect=True)
@pytest.mark.parametrize("caller", [c for c in CALLERS if c != Role.ADMIN.value])
@schema.parametrize()
@settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_as_others_every_response_is_documented_and_no_5xx(
    case: schemathesis.Case, caller: str, served: tuple[str, dict[str, dict[str, str]]]
) -> None:
    _call(case, caller, served)
