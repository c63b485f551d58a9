"""Editing a machine: name, site and place by the API; a planogram once the machine confirms."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from backend.app import create_app
from backend.config import Settings
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import AuditRecord, Slot, utcnow
from firmware_agent.wire import payloads
from tests.backend.conftest import AuthHeaders, register
from tests.http_server import serve_http

MACHINE = "/api/v1/machines/test-001"


@pytest.fixture
def client(migrated_url: str, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    settings = Settings(environment="test", database_url=migrated_url)
    with serve_http(create_app(settings)) as base_url, httpx.Client(
            base_url=base_url, timeout=10, headers=auth_headers("admin", name="ops-admin")) as http:
        yield http


def _answer(engine: Engine, command_id: str, ok: bool) -> None:
    """Deliver the machine's answer to a command through ingest, as the worker does."""
    result = payloads.CommandResult(command_id=command_id, ok=ok,
                                    error=None if ok else "controller refused some slots")
    with Session(engine) as session:
        BatchWriter(default_low_threshold=2).write(
            session, [Message("nx/v1/machines/test-001/cmd/result", result.to_bytes(), utcnow())],
            utcnow())
        session.commit()


def _audits(session: Session, action: str) -> list[AuditRecord]:
    session.rollback()  # a fresh snapshot
    return list(session.exec(select(AuditRecord).where(AuditRecord.action == action)).all())


def test_name_site_and_place_change_audited_and_bounded(
    client: httpx.Client, session: Session, auth_headers: AuthHeaders
) -> None:
    register(session, "test-001")
    changed = client.patch(MACHINE, json={"name": "Library steps", "site": None, "lat": 40.71})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["site"], body["lat"], body["lon"]) == (
        "Library steps", None, 40.71, -74.0)
    assert client.get(MACHINE).json()["name"] == "Library steps"
    [audit] = _audits(session, "machine.update")
    assert audit.actor == "ops-admin"
    assert audit.before is not None
    assert audit.after is not None
    assert (audit.before["name"], audit.after["name"]) == ("Machine test-001", "Library steps")
    # Nothing changed: nothing audited.
    assert client.patch(MACHINE, json={"name": "Library steps"}).status_code == 200
    assert len(_audits(session, "machine.update")) == 1
    for bad in ({"name": None}, {"lat": None}, {"lat": 91}, {"lon": -181}, {"name": ""},
                {"name": "x" * 121}, {"name": "bad\u0000name"}, {"par": 5}):
        answer = client.patch(MACHINE, json=bad)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert client.patch("/api/v1/machines/nope-1", json={"name": "x"}).status_code == 404
    refused = client.patch(MACHINE, json={"name": "x"}, headers=auth_headers("outreach"))
    assert refused.status_code == 403


def test_a_planogram_becomes_the_books_only_when_the_machine_confirms_it(
    client: httpx.Client, session: Session, engine: Engine
) -> None:
    register(session, "test-001", count=4, capacity=10, slots=2)
    slots = [{"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 12, "par": 9,
              "low_threshold": 3},
             {"slot": 3, "product": "fentanyl-test-strip", "capacity": 40, "par": 30}]
    made = client.post(f"{MACHINE}/commands",
                       json={"kind": "planogram", "command_id": "pg-1", "slots": slots})
    assert made.status_code == 201, made.text
    # Pending: the books keep what the machine holds now.
    before = {s["slot"]: s for s in client.get(MACHINE).json()["slots"]}
    assert (before[1]["capacity"], before[1]["par"]) == (10, 10)
    assert 3 not in before
    _answer(engine, "pg-1", ok=True)
    assert client.get(f"{MACHINE}/commands/pg-1").json()["state"] == "done"
    after = {s["slot"]: s for s in client.get(MACHINE).json()["slots"]}
    assert (after[1]["capacity"], after[1]["par"], after[1]["low_threshold"]) == (12, 9, 3)
    assert after[1]["count"] == 4  # a planogram changes no count
    assert (after[3]["product"], after[3]["capacity"], after[3]["par"], after[3]["count"]) == (
        "fentanyl-test-strip", 40, 30, 0)
    assert after[2]["capacity"] == 10  # a slot the planogram does not name is left alone
    [audit] = _audits(session, "machine.planogram")
    assert audit.actor == "ops-admin"
    assert audit.after is not None
    assert set(audit.after["slots"]) == {"1", "3"}


def test_a_refused_or_repeated_planogram_answer_changes_nothing(
    client: httpx.Client, session: Session, engine: Engine
) -> None:
    register(session, "test-001", capacity=10)
    slots = [{"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 6, "par": 6}]
    for cid in ("pg-no", "pg-late"):
        client.post(f"{MACHINE}/commands", json={"kind": "planogram", "command_id": cid,
                                                 "slots": slots})
    _answer(engine, "pg-no", ok=False)
    assert client.get(f"{MACHINE}/commands/pg-no").json()["state"] == "failed"
    _answer(engine, "pg-no", ok=True)  # a second copy's answer: the first stands
    session.rollback()
    slot = session.get(Slot, ("test-001", 1))
    assert slot is not None
    assert (slot.capacity, slot.par) == (10, 10)
    assert _audits(session, "machine.planogram") == []
