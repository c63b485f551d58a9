"""Every route in the OpenAPI schema x every kind of caller, against backend/api/policy.py.

The only per-route knowledge is the policy table: path parameters are filled
with "1" and no body is sent. Authorization runs before the route validates
its parameters and body, so a refused caller gets exactly 401 or 403; an
allowed one gets whatever the route answers (200, 404, 409, 422), never 401,
403 or a 5xx.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session

from backend.api.policy import POLICY, PUBLIC, access_for
from backend.app import create_app
from backend.auth.principal import Role
from backend.auth.tokens import create_token, revoke_token
from backend.config import Settings
from backend.db import make_engine
from backend.models import ApiToken, utcnow
from tests.backend.conftest import bearer, register
from tests.http_server import serve_http

ANONYMOUS, REVOKED, EXPIRED, UNKNOWN, NOT_BEARER = (
    "anonymous", "revoked", "expired", "unknown", "not-bearer")
REFUSED_CALLERS = (ANONYMOUS, REVOKED, EXPIRED, UNKNOWN, NOT_BEARER)
AREA_LIMITED = "outreach-in-north"


def _operations(schema: dict[str, object]) -> list[tuple[str, str]]:
    paths = schema["paths"]
    assert isinstance(paths, dict)
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops)


@pytest.fixture
def served(migrated_url: str) -> Iterator[tuple[httpx.Client, dict[str, dict[str, str]]]]:
    """The app over real HTTP and the headers of every kind of caller."""
    engine = make_engine(migrated_url)
    headers: dict[str, dict[str, str]] = {ANONYMOUS: {}}
    with Session(engine) as session:
        register(session, "test-001", area="north")
        for role in Role:
            headers[role.value] = bearer(create_token(session, name=f"m-{role}", role=role))
        headers[AREA_LIMITED] = bearer(create_token(session, name="m-north", role=Role.OUTREACH,
                                                    areas=["north"]))
        headers[REVOKED] = bearer(create_token(session, name="m-revoked", role=Role.ADMIN))
        revoke_token(session, name="m-revoked")
        headers[EXPIRED] = bearer(create_token(session, name="m-expired", role=Role.ADMIN,
                                               expires_in=timedelta(days=1)))
        session.execute(update(ApiToken).where(ApiToken.name == "m-expired")  # type: ignore[arg-type]
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    engine.dispose()
    headers[UNKNOWN] = bearer("nxt_" + "A" * 43)
    headers[NOT_BEARER] = {"Authorization": "Basic YWRtaW46YWRtaW4="}
    settings = Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10) as http:
        yield http, headers


def test_every_route_has_exactly_one_policy_entry(served: tuple[httpx.Client, dict[str, dict[
        str, str]]]) -> None:
    http, _ = served
    operations = _operations(http.get("/openapi.json").json())
    missing = [op for op in operations if op not in POLICY]
    assert missing == [], f"routes without an entry in backend/api/policy.py: {missing}"
    stale = sorted(set(POLICY) - set(operations))
    assert stale == [], f"policy entries for routes that do not exist: {stale}"
    for key, access in POLICY.items():
        assert access is PUBLIC or Role.ADMIN in access, f"admin may call everything: {key}"


def test_route_matrix(served: tuple[httpx.Client, dict[str, dict[str, str]]]) -> None:
    http, headers = served
    operations = _operations(http.get("/openapi.json").json())
    checked = 0
    for method, template in operations:
        access = access_for(method, template)
        assert access is not None, f"{method} {template} has no policy entry"
        url = re.sub(r"\{[^}]+\}", "1", template)
        for caller, caller_headers in headers.items():
            response = http.request(method, url, headers=caller_headers)
            where = f"{method} {template} as {caller}: {response.status_code} {response.text[:200]}"
            assert response.status_code < 500, where
            if access is PUBLIC:
                assert response.status_code not in (401, 403), where
            elif caller in REFUSED_CALLERS:
                assert response.status_code == 401, where
                assert response.headers["www-authenticate"].startswith("Bearer"), where
            else:
                role = Role.OUTREACH if caller == AREA_LIMITED else Role(caller)
                if role in access:
                    assert response.status_code not in (401, 403), where
                else:
                    assert response.status_code == 403, where
            checked += 1
    assert checked == len(operations) * len(headers)
