"""The audit trail: one record per write, in the same transaction, append-only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from backend import crud
from backend.app import create_app
from backend.audit import record_audit
from backend.config import Settings
from backend.models import Alert, AuditRecord, Slot
from tests.backend.conftest import AuthHeaders, register
from tests.backend.helpers import fresh
from tests.http_server import serve_http


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10) as http:
        yield http


def records(session: Session, **where: str) -> list[AuditRecord]:
    """Return the audit records (optionally of one action), oldest first."""
    fresh(session)
    query = select(AuditRecord).order_by(col(AuditRecord.id))
    for name, value in where.items():
        query = query.where(getattr(AuditRecord, name) == value)
    return list(session.exec(query).all())


def _open_alert_id(session: Session, machine_id: str) -> int:
    fresh(session)
    alert = session.exec(select(Alert).where(col(Alert.machine_id) == machine_id,
                                             col(Alert.status) == "open")).first()
    assert alert is not None
    assert alert.id is not None
    return alert.id


def test_acknowledge_and_resolve_each_leave_one_record(
    client: httpx.Client, session: Session, auth_headers: AuthHeaders
) -> None:
    register(session, "au-001", count=1)
    alert_id = _open_alert_id(session, "au-001")
    request_id = f"req-{uuid.uuid4().hex}"
    outreach, admin = auth_headers("outreach"), auth_headers("admin")
    acked = client.post(f"/api/v1/alerts/{alert_id}/acknowledge",
                        headers={**outreach, "X-Request-ID": request_id})
    assert acked.status_code == 200
    assert acked.headers["X-Request-ID"] == request_id
    # Acknowledging again changes nothing, so it records nothing.
    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge",
                       headers=outreach).status_code == 200
    resolved = client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=admin)
    assert client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=admin).status_code == 200

    ack, = records(session, action="alert.acknowledge")
    assert (ack.actor, ack.object_type, ack.object_id, ack.request_id) == (
        "test-outreach", "alert", str(alert_id), request_id)
    assert ack.before is not None
    assert ack.after is not None
    assert (ack.before["status"], ack.after["status"]) == ("open", "acknowledged")
    assert ack.before["acknowledged_at"] is None
    assert ack.after["acknowledged_at"] is not None
    res, = records(session, action="alert.resolve")
    assert (res.actor, res.object_id) == ("test-admin", str(alert_id))
    assert res.request_id == resolved.headers["X-Request-ID"]
    assert res.before is not None
    assert res.after is not None
    assert (res.before["status"], res.after["status"]) == ("acknowledged", "resolved")


def test_restock_visit_leaves_one_record_with_counts_before_and_after(
    client: httpx.Client, session: Session, auth_headers: AuthHeaders
) -> None:
    register(session, "au-002", count=3, slots=2)
    visit = client.post("/api/v1/machines/au-002/restock-visits",
                        json={"counts": {"1": 10, "2": 9}, "counted_before": {"1": 2}},
                        headers=auth_headers("outreach"))
    assert visit.status_code == 201
    record, = records(session, action="restock_visit.record")
    assert (record.object_type, record.object_id) == ("machine", "au-002")
    assert record.before == {"counts": {"1": 3, "2": 3}}
    assert record.after == {"counts": {"1": 10, "2": 9}, "visit_id": visit.json()["id"],
                            "visited_by": "test-outreach", "counted_before": {"1": 2}}
    assert record.actor == "test-outreach"
    assert record.request_id == visit.headers["X-Request-ID"]


def test_a_failed_visit_leaves_neither_change_nor_record(
    client: httpx.Client, session: Session, auth_headers: AuthHeaders
) -> None:
    register(session, "au-003", count=3)
    # Slot 1 is changed in the transaction before slot 99 is found missing.
    failed = client.post("/api/v1/machines/au-003/restock-visits",
                         json={"counts": {"1": 10, "99": 1}}, headers=auth_headers("outreach"))
    assert failed.status_code == 404
    fresh(session)
    slot = session.get(Slot, ("au-003", 1))
    assert slot is not None
    assert slot.count == 3
    assert records(session, action="restock_visit.record") == []


def _refuse_audit_inserts(engine: Engine) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by test'; END $$"))
            connection.execute(text(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_record "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"))
        else:
            connection.execute(text(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_record "
                "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"))


def test_a_change_whose_record_cannot_be_written_does_not_happen(
    session: Session, engine: Engine
) -> None:
    register(session, "au-004", count=1)
    alert_id = _open_alert_id(session, "au-004")
    _refuse_audit_inserts(engine)
    with Session(engine) as writer, pytest.raises(DBAPIError, match="refused by test"):
        crud.resolve_alert(session=writer, alert_id=alert_id, by="outreach")
    fresh(session)
    alert = session.get(Alert, alert_id)
    assert alert is not None
    assert alert.status == "open"


def test_machine_register_update_deactivate_remove_are_recorded(session: Session) -> None:
    register(session, "au-005", count=4)
    register(session, "au-005", count=4)  # the same again: no change, no record
    crud.register_machine(session=session, machine_id="au-005", name="Renamed", lat=40.7,
                          lon=-74.0, site="test", actor="cli:ops",
                          slots=[{"slot": 1, "low_threshold": 3}])
    crud.deactivate_machine(session=session, machine_id="au-005", actor="cli:ops",
                            request_id="r-1")
    assert crud.remove_machine(session=session, machine_id="au-005", actor="cli:ops")
    trail = records(session, object_id="au-005")
    assert [r.action for r in trail] == ["machine.register", "machine.register",
                                         "machine.deactivate", "machine.remove"]
    created, changed, deactivated, removed = trail
    assert created.before is None
    assert created.after is not None
    assert created.after["slots"]["1"]["count"] == 4
    assert changed.before is not None
    assert changed.after is not None
    assert (changed.before["name"], changed.after["name"]) == ("Machine au-005", "Renamed")
    assert (changed.before["slots"]["1"]["low_threshold"],
            changed.after["slots"]["1"]["low_threshold"]) == (2, 3)
    assert (deactivated.before, deactivated.after, deactivated.request_id) == (
        {"active": True}, {"active": False}, "r-1")
    assert removed.after is None
    assert removed.before is not None
    assert removed.before["name"] == "Renamed"
    assert {r.actor for r in trail} == {"test", "cli:ops"}


def test_audit_records_cannot_be_updated_or_deleted(session: Session, engine: Engine) -> None:
    with Session(engine) as writer:
        record_audit(writer, actor="admin", action="token.create", object_type="token",
                     object_id="van-1", after={"role": "outreach"})
        writer.commit()
    for statement in ("UPDATE audit_record SET actor = 'someone else'",
                      "DELETE FROM audit_record"):
        with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text(statement))
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text("TRUNCATE audit_record"))
    record, = records(session)
    assert (record.actor, record.after) == ("admin", {"role": "outreach"})


@pytest.mark.parametrize("offered", ["bad id with spaces", "x" * 129, ""])
def test_a_malformed_request_id_is_replaced_by_a_uuid(client: httpx.Client,
                                                      offered: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": offered})
    assert uuid.UUID(response.headers["X-Request-ID"]).version == 4


def test_each_request_without_an_id_gets_its_own(client: httpx.Client) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert first != second
    assert client.get("/healthz", headers={"X-Request-ID": "a1:b2"}).headers[
        "X-Request-ID"] == "a1:b2"
