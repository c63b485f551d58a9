"""Commands to machines: the API, results from ingest, the resend tick and expiry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from backend.app import create_app
from backend.commands.resender import tick
from backend.commands.store import Outgoing
from backend.config import Settings
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import AuditRecord, MachineCommand, utcnow
from firmware_agent.wire import payloads
from tests.backend.conftest import AuthHeaders, register
from tests.http_server import serve_http

BASE = "/api/v1/machines/test-001/commands"


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return Settings(environment="test", database_url=migrated_url, commands_resend_s=5,
                    commands_max_lifetime_s=3600)


@pytest.fixture
def client(settings: Settings, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10, headers=auth_headers("admin")) as http:
        yield http


class Recorder:
    """A publisher that keeps what it is given (the real one is tested with processes)."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def publish(self, item: Outgoing) -> bool:
        self.sent.append(item)
        return True


def _result(engine: Engine, command_id: str, ok: bool, machine_id: str = "test-001") -> None:
    result = payloads.CommandResult(command_id=command_id, ok=ok,
                                    error=None if ok else "controller did not acknowledge")
    topic = f"nx/v1/machines/{machine_id}/cmd/result"
    with Session(engine) as session:
        BatchWriter(default_low_threshold=2).write(
            session, [Message(topic, result.to_bytes(), utcnow())], utcnow())
        session.commit()


def test_a_command_is_stored_audited_and_validated_by_the_agents_models(
    client: httpx.Client, session: Session
) -> None:
    register(session, "test-001")
    made = client.post(BASE, json={"kind": "authorize_vend", "slot": 3, "ttl_s": 30,
                                   "expires_in_s": 120})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["state"] == "pending"
    assert body["kind"] == "authorize_vend"
    assert body["payload"] == {"command_id": body["command_id"], "kind": "authorize_vend",
                               "slot": 3, "ttl_s": 30}
    assert body["result"] is None
    assert body["send_count"] == 0
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(
        body["created_at"])
    assert lifetime == timedelta(seconds=120)
    session.rollback()  # a fresh snapshot
    audit = session.exec(select(AuditRecord).where(AuditRecord.action == "command.send")).one()
    assert audit.object_id == f"test-001/{body['command_id']}"
    # What the agent refuses is refused here, before anything is stored.
    for bad in ({"kind": "authorize_vend", "slot": 3, "ttl_s": 0},
                {"kind": "authorize_vend", "slot": 100, "ttl_s": 5},
                {"kind": "reboot"},
                {"kind": "lock", "extra": 1},
                {"kind": "config", "heartbeat_s": 0.5},
                {"kind": "lock", "command_id": "has/slash"},
                {"kind": "lock", "expires_in_s": 3601}):
        answer = client.post(BASE, json=bad)
        assert answer.status_code == 422, (bad, answer.text)
    assert client.post(BASE, json={"kind": "lock", "command_id": "lock-1"}).status_code == 201
    again = client.post(BASE, json={"kind": "unlock", "command_id": "lock-1"})
    assert again.status_code == 409
    session.rollback()
    assert len(session.exec(select(MachineCommand)).all()) == 2
    assert client.post("/api/v1/machines/nope-1/commands",
                       json={"kind": "lock"}).status_code == 404


def test_area_tokens_see_no_commands_outside_their_areas(
    settings: Settings, session: Session, auth_headers: AuthHeaders
) -> None:
    register(session, "test-001", area="north")
    with serve_http(create_app(settings)) as base_url, httpx.Client(base_url=base_url) as http:
        south = auth_headers("admin", areas=["south"])
        north = auth_headers("admin", areas=["north"])
        assert http.post(BASE, json={"kind": "lock"}, headers=south).status_code == 404
        assert http.get(BASE, headers=south).status_code == 404
        made = http.post(BASE, json={"kind": "lock", "command_id": "n1"}, headers=north)
        assert made.status_code == 201
        assert http.get(f"{BASE}/n1", headers=south).status_code == 404
        assert http.get(f"{BASE}/n1", headers=north).status_code == 200
        assert http.post(BASE, json={"kind": "lock"},
                         headers=auth_headers("outreach")).status_code == 403


def test_tick_sends_resends_after_the_timeout_and_expires(
    settings: Settings, client: httpx.Client, session: Session, engine: Engine
) -> None:
    register(session, "test-001")
    client.post(BASE, json={"kind": "lock", "command_id": "c-long", "expires_in_s": 600})
    client.post(BASE, json={"kind": "unlock", "command_id": "c-short", "expires_in_s": 10})
    sent = Recorder()
    now = utcnow()
    assert tick(engine, sent, settings, now).sent == 2
    first = {item.command_id: item for item in sent.sent}
    assert json.loads(first["c-long"].payload) == {"command_id": "c-long", "kind": "lock"}
    assert 595 <= first["c-long"].expiry_s <= 600
    assert 5 <= first["c-short"].expiry_s <= 10
    # Within the resend timeout nothing goes again; after it, both do.
    assert tick(engine, sent, settings, now + timedelta(seconds=4)).sent == 0
    assert tick(engine, sent, settings, now + timedelta(seconds=6)).sent == 2
    # Past its expiry a command is expired, and never sent again.
    later = now + timedelta(seconds=12)
    result = tick(engine, sent, settings, later)
    assert (result.sent, result.expired) == (1, 1)
    assert [i.command_id for i in sent.sent[-1:]] == ["c-long"]
    states = {c["command_id"]: (c["state"], c["send_count"])
              for c in client.get(BASE).json()["data"]}
    assert states == {"c-long": ("pending", 3), "c-short": ("expired", 2)}
    assert [c["command_id"] for c in client.get(BASE, params={"state": "expired"}).json()
            ["data"]] == ["c-short"]


def test_results_from_ingest_settle_commands_once(
    settings: Settings, client: httpx.Client, session: Session, engine: Engine
) -> None:
    register(session, "test-001")
    for cid in ("ok-1", "bad-1"):
        client.post(BASE, json={"kind": "lock", "command_id": cid})
    _result(engine, "ok-1", ok=True)
    _result(engine, "bad-1", ok=False)
    _result(engine, "ok-1", ok=False)  # a repeat's answer: the first one stands
    done = client.get(f"{BASE}/ok-1").json()
    assert done["state"] == "done"
    assert done["result"]["ok"] is True
    assert done["completed_at"] is not None
    failed = client.get(f"{BASE}/bad-1").json()
    assert failed["state"] == "failed"
    assert failed["result"]["error"] == "controller did not acknowledge"
    # Settled commands are not sent any more.
    sent = Recorder()
    assert tick(engine, sent, settings, utcnow() + timedelta(seconds=60)).sent == 0
    assert client.get(f"{BASE}/nope").status_code == 404


def test_two_replicas_ticking_at_once_send_each_command_once(
    settings: Settings, session: Session, migrated_url: str
) -> None:
    """Claims are row locks: concurrent ticks (two replicas) never send the same copy twice."""
    from concurrent.futures import ThreadPoolExecutor

    from backend.commands.store import create_command
    from backend.db import make_engine

    register(session, "test-001")
    now = utcnow()
    for n in range(60):
        create_command(session=session, machine_id="test-001",
                       command=payloads.LockCommand(command_id=f"c{n}"), lifetime_s=600,
                       actor="test", now=now)
    session.commit()
    small = settings.model_copy(update={"commands_batch": 7})
    engines = [make_engine(migrated_url, immediate=True) for _ in range(2)]
    recorders = [Recorder(), Recorder()]

    def replica(i: int) -> None:
        while tick(engines[i], recorders[i], small, now).sent:
            pass

    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(replica, range(2)))
    finally:
        for eng in engines:
            eng.dispose()
    sent = [item.command_id for r in recorders for item in r.sent]
    assert sorted(sent) == sorted(f"c{n}" for n in range(60))


def test_upkeep_prunes_finished_commands_and_old_results_never_pending_ones(
        engine: Engine, settings: Settings) -> None:
    from backend.commands.store import prune_finished
    from backend.ingest.upkeep import run_upkeep
    from backend.models import CommandResultRecord, CommandState

    now = utcnow()
    old, recent = now - timedelta(days=120), now - timedelta(days=10)
    with Session(engine) as session:
        for n, (state, completed) in enumerate([
            (CommandState.DONE, old), (CommandState.EXPIRED, old), (CommandState.FAILED, recent),
            (CommandState.PENDING, None),
        ]):
            session.add(MachineCommand(
                machine_id="test-001", command_id=f"c{n}", kind="ping", payload={},
                state=state.value, created_by="test", created_at=old, expires_at=old,
                next_send_at=old, completed_at=completed))
        session.add(CommandResultRecord(machine_id="test-001", command_id="c0", ok=True,
                                        received_at=old))
        session.add(CommandResultRecord(machine_id="test-001", command_id="c2", ok=False,
                                        received_at=recent))
        session.commit()
        assert settings.commands_retention_days == 90
        run_upkeep(session, now=now, settings=settings)
        session.commit()
        left = {c.command_id: c.state for c in session.exec(select(MachineCommand)).all()}
        assert left == {"c2": "failed", "c3": "pending"}
        assert [r.command_id for r in session.exec(select(CommandResultRecord)).all()] == ["c2"]
        # Nothing older is left: a second run deletes nothing.
        assert prune_finished(session=session, before=now - timedelta(days=90)) == 0
