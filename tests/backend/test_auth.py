"""Tokens, roles and areas over real HTTP: life cycle, scoping, who acted, no secrets logged."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from backend.app import create_app
from backend.auth import tokens
from backend.auth.tokens import authenticate_token, create_token, parse_duration
from backend.config import Settings
from backend.db import make_engine, migrate
from backend.models import Alert, AlertType, ApiToken, Machine, utcnow
from backend.provisioning import registry
from tests.backend.conftest import AuthHeaders, bearer, make_token, register
from tests.backend.procs import REPO
from tests.http_server import serve_http


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with serve_http(create_app(settings)) as url:
        yield url


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-c", "from backend.cli import main; main()", "token", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_cli_token_life_cycle_and_a_replica_refuses_a_revoked_token(
        migrated_url: str, settings: Settings) -> None:
    created = _cli(migrated_url, "create", "--name", "van-north", "--role", "outreach",
                   "--expires-in", "90d", "--area", "north")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert created.stdout == token + "\n"  # the token alone on stdout
    assert token.startswith("nxt_")
    assert len(token) >= 40
    assert "shown only this once" in created.stderr
    assert token not in created.stderr
    listed = _cli(migrated_url, "list")
    assert listed.returncode == 0
    assert "van-north" in listed.stdout
    assert "outreach" in listed.stdout
    assert token[:10] in listed.stdout
    assert token not in listed.stdout
    again = _cli(migrated_url, "create", "--name", "van-north", "--role", "admin")
    assert again.returncode == 1
    assert "exists" in again.stderr
    assert again.stdout == ""
    bad = _cli(migrated_url, "create", "--name", "x", "--role", "admin", "--expires-in", "soon")
    assert bad.returncode == 1
    assert "duration" in bad.stderr
    # Two API processes on one database, as replicas behind a load balancer.
    with serve_http(create_app(settings)) as one, serve_http(create_app(settings)) as two:
        for url in (one, two):
            me = httpx.get(f"{url}/api/v1/auth/me", headers=bearer(token), timeout=10)
            assert me.json() == {"name": "van-north", "role": "outreach", "areas": ["north"],
                                 "source": "token"}
        revoked = _cli(migrated_url, "revoke", "van-north")
        assert revoked.returncode == 0, revoked.stderr
        for url in (one, two):
            refused = httpx.get(f"{url}/api/v1/auth/me", headers=bearer(token), timeout=10)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
    assert _cli(migrated_url, "revoke", "van-north").returncode == 1
    assert "revoked" in _cli(migrated_url, "list", "--all").stdout


def test_cli_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    done = _cli(f"sqlite:///{tmp_path / 'empty.db'}", "create", "--name", "a", "--role", "admin")
    assert done.returncode == 2
    assert "nx-backend migrate" in done.stderr
    assert done.stdout == ""


def test_a_taken_name_keeps_the_callers_other_writes(migrated_url: str) -> None:
    engine = make_engine(migrated_url, immediate=True)
    with Session(engine) as session:
        create_token(session, name="taken", role="admin")
    with Session(engine) as session:
        register(session, "mine-001")  # commits
        session.add(Alert(type="door_open", severity="warning", subject="mine-001",
                          machine_id="mine-001", message="pending"))
        session.flush()
        with pytest.raises(tokens.TokenExistsError):
            create_token(session, name="taken", role="admin", commit=False)
        session.commit()
        assert session.exec(select(Alert).where(Alert.subject == "mine-001")).first()
    engine.dispose()


def test_expired_token_is_refused_and_last_used_is_written_sparingly(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with Session(engine) as session:
        token = create_token(session, name="short", role="health", expires_in=timedelta(hours=1))
        now = utcnow()
        assert authenticate_token(session, token, touch_after_s=60, now=now) is not None
        first = session.exec(select(ApiToken)).one().last_used_at
        assert first == now
        authenticate_token(session, token, touch_after_s=60, now=now + timedelta(seconds=30))
        session.expire_all()
        assert session.exec(select(ApiToken)).one().last_used_at == first  # not yet
        authenticate_token(session, token, touch_after_s=60, now=now + timedelta(seconds=61))
        session.expire_all()
        assert session.exec(select(ApiToken)).one().last_used_at == now + timedelta(seconds=61)
        assert authenticate_token(session, token, touch_after_s=60,
                                  now=now + timedelta(hours=1)) is None
        assert authenticate_token(session, token + "x", touch_after_s=60, now=now) is None
    engine.dispose()
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("2w") == timedelta(weeks=2)


def test_area_limited_token_sees_and_writes_only_its_areas(
        base_url: str, session: Session, auth_headers: AuthHeaders) -> None:
    register(session, "nor-001", count=0, area="north")
    register(session, "sou-001", count=0, area="south")
    register(session, "nowhere-001", count=0)
    north = auth_headers("outreach", areas=["north"])
    with httpx.Client(base_url=base_url, timeout=10, headers=north) as http:
        page = http.get("/api/v1/machines").json()
        assert ([m["id"] for m in page["data"]], page["count"]) == (["nor-001"], 1)
        assert page["data"][0]["area"] == "north"
        assert http.get("/api/v1/machines/nor-001").status_code == 200
        assert http.get("/api/v1/machines/sou-001").status_code == 404
        assert http.get("/api/v1/machines/nowhere-001").status_code == 404
        visit = {"counts": {"1": 5}}
        assert http.post("/api/v1/machines/sou-001/restock-visits", json=visit).status_code == 404
        alerts = http.get("/api/v1/alerts").json()
        assert {a["machine_id"] for a in alerts["data"]} == {"nor-001"}
        assert alerts["count"] == len(alerts["data"]) == 2
        others = httpx.get(f"{base_url}/api/v1/alerts", params={"machine_id": "sou-001"},
                           headers=auth_headers("admin")).json()["data"]
        assert others
        assert http.post(f"/api/v1/alerts/{others[0]['id']}/acknowledge").status_code == 404
        assert http.post(f"/api/v1/alerts/{others[0]['id']}/resolve").status_code == 404
        assert http.post("/api/v1/machines/nor-001/restock-visits", json=visit).status_code == 201
    everyone = httpx.get(f"{base_url}/api/v1/machines", headers=auth_headers("outreach"),
                         timeout=10).json()
    assert everyone["count"] == 3


def test_alerts_about_machines_go_to_outreach_and_about_areas_to_health(
        base_url: str, session: Session, auth_headers: AuthHeaders) -> None:
    register(session, "nor-001", count=0, area="north")
    hotspot = Alert(type=AlertType.OVERDOSE_HOTSPOT.value, severity="warning",
                    subject="cluster-1", machine_id=None, message="a cluster",
                    details={"lat": 40.0, "lon": -75.0, "radius_km": 1.0, "machines": ["nor-001"]})
    session.add(hotspot)
    session.commit()
    session.refresh(hotspot)

    def ids(headers: dict[str, str]) -> set[int]:
        body = httpx.get(f"{base_url}/api/v1/alerts", headers=headers, timeout=10).json()
        return {a["id"] for a in body["data"]}

    outreach, health = auth_headers("outreach"), auth_headers("health")
    admin = auth_headers("admin")
    machine_alerts = ids(outreach)
    assert machine_alerts
    assert hotspot.id not in machine_alerts
    assert ids(health) == {hotspot.id}
    assert ids(admin) == machine_alerts | {hotspot.id}
    # An area-limited token sees the area alerts that list a machine in its areas.
    assert ids(auth_headers("health", areas=["north"])) == {hotspot.id}
    south = auth_headers("health", areas=["south"])
    assert ids(south) == set()
    assert httpx.post(f"{base_url}/api/v1/alerts/{hotspot.id}/acknowledge", headers=south,
                      timeout=10).status_code == 404
    assert httpx.get(f"{base_url}/api/v1/hotspots", headers=south,
                     timeout=10).json()["features"] == []
    some_machine_alert = min(machine_alerts)
    assert httpx.post(f"{base_url}/api/v1/alerts/{some_machine_alert}/resolve", headers=health,
                      timeout=10).status_code == 404
    assert httpx.post(f"{base_url}/api/v1/alerts/{hotspot.id}/acknowledge", headers=outreach,
                      timeout=10).status_code == 404
    acked = httpx.post(f"{base_url}/api/v1/alerts/{hotspot.id}/acknowledge", headers=health,
                       json={"by": "someone-else"}, timeout=10).json()
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "test-health")
    features = httpx.get(f"{base_url}/api/v1/hotspots", headers=health, timeout=10).json()
    assert len(features["features"]) == 1
    assert httpx.get(f"{base_url}/api/v1/hotspots", headers=outreach,
                     timeout=10).status_code == 403


def test_system_alerts_are_for_admin_only_whatever_the_areas(
        base_url: str, session: Session, auth_headers: AuthHeaders) -> None:
    # A failing notification route names a webhook or a mailbox: configuration, not health.
    register(session, "nor-001", count=0, area="north")
    failed = Alert(type=AlertType.NOTIFICATION_FAILED.value, severity="warning",
                   subject="route-7", machine_id=None, message="notifications to route 7 fail",
                   details={"route_id": 7, "machines": ["nor-001"]})
    session.add(failed)
    session.commit()
    session.refresh(failed)

    def ids(headers: dict[str, str]) -> set[int]:
        body = httpx.get(f"{base_url}/api/v1/alerts", headers=headers, timeout=10).json()
        return {a["id"] for a in body["data"]}

    assert failed.id in ids(auth_headers("admin"))
    assert failed.id in ids(auth_headers("admin", areas=["south"]))
    for headers in (auth_headers("health"), auth_headers("health", areas=["north"]),
                    auth_headers("outreach")):
        assert failed.id not in ids(headers)
        assert httpx.post(f"{base_url}/api/v1/alerts/{failed.id}/acknowledge", headers=headers,
                          timeout=10).status_code == 404


def test_admin_manages_tokens_over_the_api(base_url: str, auth_headers: AuthHeaders) -> None:
    with httpx.Client(base_url=base_url, timeout=10, headers=auth_headers("admin")) as http:
        made = http.post("/api/v1/tokens", json={"name": "epi-1", "role": "health",
                                                 "expires_in": "30d"})
        assert made.status_code == 201, made.text
        assert made.headers["cache-control"] == "no-store"
        token = made.json()["token"]
        assert made.json()["prefix"] == token[:10]
        me = httpx.get(f"{base_url}/api/v1/auth/me", headers=bearer(token), timeout=10).json()
        assert (me["name"], me["role"]) == ("epi-1", "health")
        assert http.post("/api/v1/tokens", json={"name": "epi-1", "role": "health"}
                         ).status_code == 409
        assert http.post("/api/v1/tokens", json={"name": "x", "role": "health",
                                                 "expires_in": "never"}).status_code == 422
        listed = http.get("/api/v1/tokens").json()
        assert "epi-1" in {t["name"] for t in listed["data"]}
        assert token not in http.get("/api/v1/tokens").text
        assert http.post("/api/v1/tokens/epi-1/revoke").json()["state"] == "revoked"
        assert http.post("/api/v1/tokens/epi-1/revoke").status_code == 404
        assert httpx.get(f"{base_url}/api/v1/auth/me", headers=bearer(token),
                         timeout=10).status_code == 401
    assert httpx.get(f"{base_url}/api/v1/tokens", headers=auth_headers("outreach"),
                     timeout=10).status_code == 403


def test_no_token_in_any_log_line(migrated_url: str, settings: Settings, session: Session,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    register(session, "nor-001", count=0, area="north")
    secrets = [create_token(session, name=f"t-{r}", role=r) for r in ("admin", "outreach")]
    revoked = create_token(session, name="gone", role="admin")
    session.execute(update(ApiToken).where(ApiToken.name == "gone")  # type: ignore[arg-type]
                    .values(revoked_at=utcnow()))
    session.commit()
    with serve_http(create_app(settings)) as url:
        for token in [*secrets, revoked, "nxt_not-a-real-token", "a.b.c"]:
            for path in ("/api/v1/machines", "/api/v1/alerts", "/api/v1/tokens", "/metrics"):
                httpx.get(url + path, headers=bearer(token), timeout=10)
        made = httpx.post(url + "/api/v1/tokens", headers=bearer(secrets[0]), timeout=10,
                          json={"name": "new", "role": "health"}).json()["token"]
    created = _cli(migrated_url, "create", "--name", "cli-made", "--role", "admin")
    text = caplog.text + created.stderr + _cli(migrated_url, "list").stdout
    for token in [*secrets, revoked, made, created.stdout.strip()]:
        assert token not in text
        assert token[4:] not in text


def test_device_registration_sets_and_keeps_the_area(migrated_url: str, session: Session) -> None:
    settings = Settings(environment="test", database_url=migrated_url)
    registry.register(settings, machine_id="nor-009", name="N", lat=40.0, lon=-75.0,
                      area="north", actor="cli:test")
    registry.register(settings, machine_id="nor-009", name="N2", lat=40.0, lon=-75.0,
                      actor="cli:test")
    machine = session.get(Machine, "nor-009")
    assert machine is not None
    assert (machine.name, machine.area) == ("N2", "north")


@pytest.mark.allow_logged_errors
def test_a_database_that_cannot_be_read_gives_503_not_a_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    token = make_token(url, "admin")
    app = create_app(Settings(environment="test", database_url=url))
    with serve_http(app) as base:
        assert _me_status(base, token) == 200
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE api_token")
        engine.dispose()
        response = httpx.get(f"{base}/api/v1/auth/me", headers=bearer(token), timeout=10)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"


def _me_status(base: str, token: str) -> int:
    return httpx.get(f"{base}/api/v1/auth/me", headers=bearer(token), timeout=10).status_code
