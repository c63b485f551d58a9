"""Machine tags: set by admins (API, CLI), audited, and notification routes select by them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from backend.alerts.rules import AlertSpec
from backend.alerts.store import open_alert
from backend.app import create_app
from backend.config import Settings
from backend.models import (
    AlertType,
    AuditRecord,
    Machine,
    Notification,
    NotificationRoute,
    Severity,
)
from tests.backend.conftest import AuthHeaders, register
from tests.http_server import serve_http

TAGS = "/api/v1/machines/{}/tags"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(migrated_url: str) -> Iterator[httpx.Client]:
    settings = Settings(environment="test", database_url=migrated_url)
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10) as http:
        yield http


def test_admins_set_tags_audited_and_others_are_refused(
    client: httpx.Client, engine: Engine, auth_headers: AuthHeaders
) -> None:
    with Session(engine) as session:
        register(session, "test-001", area="north")
    admin = auth_headers("admin", name="ops-admin")
    url = TAGS.format("test-001")
    done = client.put(url, headers=admin, json={"tags": ["pilot", "mobile", "pilot"]})
    assert done.status_code == 200, done.text
    assert done.json() == {"machine_id": "test-001", "tags": ["mobile", "pilot"]}
    assert client.put(url, json={"tags": []}).status_code == 401
    for role in ("outreach", "health", "provisioning"):
        assert client.put(url, headers=auth_headers(role), json={"tags": []}).status_code == 403
    assert client.put(TAGS.format("nope-001"), headers=admin,
                      json={"tags": []}).status_code == 404
    southern = auth_headers("admin", areas=["south"])
    assert client.put(url, headers=southern, json={"tags": []}).status_code == 404
    for bad in ({"tags": ["Mobile"]}, {"tags": [""]}, {"tags": ["x" * 33]},
                {"tags": ["a b"]}, {"tags": [f"t{i}" for i in range(21)]}, {"tag": []}):
        response = client.put(url, headers=admin, json=bad)
        assert response.status_code == 422, (bad, response.text)
    with Session(engine) as session:
        assert session.get(Machine, "test-001").tags == ["mobile", "pilot"]  # type: ignore[union-attr]
        records = session.exec(select(AuditRecord).where(
            AuditRecord.action == "machine.tags")).all()
    assert [(r.actor, r.before, r.after) for r in records] == [
        ("ops-admin", {"tags": []}, {"tags": ["mobile", "pilot"]})]


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-c", "from backend.cli import main; main()",
                           "device", "tag", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_cli_sets_and_clears_tags(migrated_url: str, engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "test-001")
    done = _cli(migrated_url, "test-001", "van", "night")
    assert done.returncode == 0, done.stderr
    assert "night van" in done.stderr + done.stdout
    refused = _cli(migrated_url, "test-001", "Bad Tag")
    assert refused.returncode != 0
    assert "bad tags" in refused.stderr
    with Session(engine) as session:
        assert session.get(Machine, "test-001").tags == ["night", "van"]  # type: ignore[union-attr]
    assert _cli(migrated_url, "nope-001", "van").returncode != 0
    assert _cli(migrated_url, "test-001").returncode == 0
    with Session(engine) as session:
        assert session.get(Machine, "test-001").tags == []  # type: ignore[union-attr]
        actions = session.exec(select(AuditRecord.action).where(
            AuditRecord.action == "machine.tags")).all()
    assert len(actions) == 2


def test_a_route_limited_to_tags_takes_only_those_machines(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "van-001")
        register(session, "fix-001")
        van = session.get(Machine, "van-001")
        assert van is not None
        van.tags = ["mobile", "pilot"]
        routes = [NotificationRoute(name="vans", channel="webhook", target="http://127.0.0.1:9/v",
                                    machine_tags=["mobile", "other"]),
                  NotificationRoute(name="all", channel="webhook", target="http://127.0.0.1:9/a")]
        session.add_all(routes)
        session.commit()
        vans, everyone = (r.id for r in routes)
        at = datetime(2027, 1, 4, 12, tzinfo=UTC)
        for machine in ("van-001", "fix-001"):
            open_alert(session, AlertSpec(AlertType.DOOR_OPEN, Severity.WARNING, machine,
                                          machine, "door"), now=at)
        session.commit()
        sent = session.exec(select(Notification.route_id, Notification.alert_key)
                            .order_by(col(Notification.id))).all()
    assert sorted((r, k) for r, k in sent) == sorted(
        [(vans, "door_open|van-001"), (everyone, "door_open|van-001"),
         (everyone, "door_open|fix-001")])
