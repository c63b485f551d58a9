"""The audit trail as an admin reads it: GET /api/v1/audit, token and CLI writes, export."""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from backend.app import create_app
from backend.audit import record_audit
from backend.config import Settings
from tests.backend.conftest import AuthHeaders, register
from tests.backend.procs import REPO
from tests.backend.test_audit import records
from tests.http_server import serve_http

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def admin(migrated_url: str, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    settings = Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10, headers=auth_headers("admin")) as http:
        yield http


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-c", "from backend.cli import main; main()", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def _seed(engine: Engine) -> None:
    """Six records an hour apart: two actors, three object ids."""
    with Session(engine) as session:
        for n in range(6):
            record = record_audit(session, actor="ana" if n % 2 else "bo", action="alert.resolve",
                                  object_type="alert", object_id=str(n % 3),
                                  before={"status": "open"}, after={"status": "resolved"})
            record.at = T0 + timedelta(hours=n)
        session.commit()


def test_token_create_and_revoke_over_the_api_are_recorded(
    admin: httpx.Client, session: Session
) -> None:
    made = admin.post("/api/v1/tokens", json={"name": "van-2", "role": "outreach",
                                              "areas": ["north"]})
    assert made.status_code == 201, made.text
    assert admin.post("/api/v1/tokens", json={"name": "van-2", "role": "outreach"}
                      ).status_code == 409  # refused: no record either
    revoked = admin.post("/api/v1/tokens/van-2/revoke")
    assert revoked.status_code == 200
    created, = records(session, action="token.create")
    assert (created.actor, created.object_type, created.object_id) == ("test-admin", "token",
                                                                        "van-2")
    assert created.before is None
    assert created.after == {"role": "outreach", "areas": ["north"],
                             "prefix": made.json()["prefix"], "expires_at": None}
    assert made.json()["token"] not in json.dumps(created.after)
    assert created.request_id == made.headers["X-Request-ID"]
    gone, = records(session, action="token.revoke")
    assert gone.before is not None
    assert gone.after is not None
    assert (gone.before["revoked_at"], gone.after["revoked_at"] is not None) == (None, True)
    assert gone.actor == "test-admin"


def test_audit_route_filters_and_pages(admin: httpx.Client, engine: Engine,
                                       auth_headers: AuthHeaders) -> None:
    _seed(engine)
    page = admin.get("/api/v1/audit", params={"limit": 4}).json()
    assert page["count"] >= 6  # the admin's token is made outside the API: not recorded
    seeded = admin.get("/api/v1/audit", params={"action": "alert.resolve"}).json()
    assert seeded["count"] == 6
    ids = [r["id"] for r in seeded["data"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    first = admin.get("/api/v1/audit", params={"action": "alert.resolve", "limit": 4}).json()
    rest = admin.get("/api/v1/audit", params={"action": "alert.resolve", "limit": 4,
                                              "offset": 4}).json()
    assert [r["id"] for r in first["data"] + rest["data"]] == ids
    assert rest["count"] == 6
    assert admin.get("/api/v1/audit", params={"actor": "ana"}).json()["count"] == 3
    by_object = admin.get("/api/v1/audit", params={"object_type": "alert", "object_id": "1"})
    assert [r["actor"] for r in by_object.json()["data"]] == ["bo", "ana"]
    window = admin.get("/api/v1/audit", params={
        "since": (T0 + timedelta(hours=1)).isoformat(),
        "until": (T0 + timedelta(hours=3)).isoformat()}).json()
    assert [r["at"] for r in window["data"]] == [
        (T0 + timedelta(hours=h)).isoformat().replace("+00:00", "Z") for h in (2, 1)]
    assert window["data"][0]["before"] == {"status": "open"}
    # A time without an offset is ambiguous: refused, not guessed.
    assert admin.get("/api/v1/audit", params={"since": "2026-11-30T12:00:00"}
                     ).status_code == 422
    for role in ("outreach", "health", "provisioning"):
        assert admin.get("/api/v1/audit", headers=auth_headers(role)).status_code == 403


def test_audit_filters_refuse_control_characters(admin: httpx.Client) -> None:
    # Found by schemathesis: a NUL in a filter reached PostgreSQL, which refuses it (a 500).
    for name in ("actor", "action", "object_type", "object_id"):
        answer = admin.get("/api/v1/audit", params={name: "a\x00b"})
        assert answer.status_code == 422, (name, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_cli_writes_are_recorded_as_the_os_user_and_export_parses_back(
    migrated_url: str, session: Session, engine: Engine, tmp_path: object
) -> None:
    register(session, "au-cli-1")
    me = f"cli:{getpass.getuser()}"
    made = _cli(migrated_url, "token", "create", "--name", "ops-1", "--role", "health")
    assert made.returncode == 0, made.stderr
    assert _cli(migrated_url, "token", "revoke", "ops-1").returncode == 0
    listed = _cli(migrated_url, "public", "set", "au-cli-1", "--name", "Harbour Clinic")
    assert listed.returncode == 0, listed.stderr
    trail = records(session)
    assert [(r.actor, r.action, r.object_id) for r in trail] == [
        ("test", "machine.register", "au-cli-1"),
        (me, "token.create", "ops-1"),
        (me, "token.revoke", "ops-1"),
        (me, "machine.public_listing", "au-cli-1")]
    assert trail[3].before is not None
    assert trail[3].after is not None
    assert (trail[3].before["public_name"], trail[3].after["public_name"]) == (
        None, "Harbour Clinic")

    jsonl = _cli(migrated_url, "audit", "export", "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["action"] for r in rows] == [r.action for r in trail]
    assert rows[3]["after"] == trail[3].after
    assert datetime.fromisoformat(rows[1]["at"]) == trail[1].at

    out = f"{tmp_path}/audit.csv"
    since = trail[1].at.isoformat()
    done = _cli(migrated_url, "audit", "export", "--since", since, "--actor", me,
                "--format", "csv", "--out", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    with open(out, encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["action"] for r in table] == ["token.create", "token.revoke",
                                            "machine.public_listing"]
    assert json.loads(table[2]["after"]) == trail[3].after
    assert table[0]["before"] == ""  # none, not the text "null"
    assert json.loads(table[1]["before"])["revoked_at"] is None

    bad = _cli(migrated_url, "audit", "export", "--since", "last tuesday")
    assert bad.returncode == 1
    assert "--since" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_csv_and_jsonl_writers_round_trip_awkward_values(session: Session,
                                                         engine: Engine) -> None:
    from backend.audit.export import write

    with Session(engine) as writer:
        record_audit(writer, actor="a,b \"c\"", action="machine.register", object_type="machine",
                     object_id="m-1", before=None,
                     after={"name": "Line 1\nLine 2, \"quoted\"", "lat": 40.5, "site": None})
        writer.commit()
    record, = records(session)
    as_csv, as_jsonl = io.StringIO(), io.StringIO()
    assert write([record], as_csv, "csv") == 1
    assert write([record], as_jsonl, "jsonl") == 1
    row, = csv.DictReader(io.StringIO(as_csv.getvalue()))
    assert (row["actor"], json.loads(row["after"])) == (record.actor, record.after)
    line = json.loads(as_jsonl.getvalue())
    assert (line["actor"], line["after"], line["before"]) == (record.actor, record.after, None)
