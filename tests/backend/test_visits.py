"""POST /visits over real HTTP: lots first-expiry-first-out, discrepancies, idempotent retries,
expiring-stock and heat-exposure alerts, area scoping."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from backend.app import create_app
from backend.config import Settings
from backend.lots.store import lots_to_replace, sweep_lot_alerts
from backend.models import (
    Alert,
    AuditRecord,
    NaloxoneLot,
    RestockVisit,
    Slot,
    TemperatureReading,
    utcnow,
)
from tests.backend.conftest import AuthHeaders, register
from tests.http_server import serve_http

PRODUCT = "naloxone-nasal-4mg"


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)


@pytest.fixture
def client(settings: Settings, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10,
                         headers=auth_headers("outreach", name="van-north")) as http:
        yield http


def _lot(number: str, days: int, qty: int) -> dict[str, object]:
    return {"lot_number": number, "product": PRODUCT,
            "expiry": (date.today() + timedelta(days=days)).isoformat(), "quantity": qty}


def _open(session: Session, kind: str) -> list[Alert]:
    session.rollback()  # a new snapshot: the API wrote since
    return list(session.exec(select(Alert).where(col(Alert.type) == kind,
                                                 col(Alert.status) != "resolved")).all())


def test_visit_loads_lots_records_discrepancy_and_replays_once(
    client: httpx.Client, session: Session
) -> None:
    register(session, "vis-001", count=1, capacity=10)  # low: the visit should fix it
    body = {"machine_id": "vis-001", "slots": [{
        "slot": 1, "found": 2,  # the books say 1: a discrepancy
        "loaded": [_lot("B-LATE", 400, 3), _lot("A-SOON", 30, 4)]}]}
    key = {"Idempotency-Key": "phone-1-visit-7"}
    first = client.post("/api/v1/visits", json=body, headers=key)
    assert first.status_code == 201, first.text
    made = first.json()
    assert made["visited_by"] == "van-north"
    assert made["counts"] == {"1": 9}  # 2 found (untracked) + 7 loaded
    assert made["discrepancies"] == [{"slot": 1, "expected": 1, "observed": 2}]
    assert made["resolved_alerts"] == 1  # low stock
    # A retry from a bad connection: the same answer, recorded once.
    again = client.post("/api/v1/visits", json=body, headers=key)
    assert again.status_code == 201
    assert again.json() == made
    assert again.headers["Idempotent-Replayed"] == "true"
    changed = {**body, "slots": [{"slot": 1, "found": 9}]}
    assert client.post("/api/v1/visits", json=changed, headers=key).status_code == 422
    session.rollback()  # a new snapshot: the API wrote since
    audits = session.exec(select(AuditRecord).where(col(AuditRecord.action) == "visit.record"))
    assert len(audits.all()) == 1
    lots = client.get("/api/v1/machines/vis-001/lots").json()
    assert [(lot["lot_number"], lot["quantity"]) for lot in lots["data"]] == [
        ("A-SOON", 4), ("B-LATE", 3)]
    assert lots["data"][0]["replace_because"] == ["expiring"]
    disc = client.get("/api/v1/machines/vis-001/discrepancies").json()
    assert disc["count"] == 1
    assert (disc["data"][0]["expected"], disc["data"][0]["observed"]) == (1, 2)
    # Expiring within 60 days: one alert for A-SOON, none for B-LATE.
    expiring = _open(session, "expiring_stock")
    assert [a.details["lot_number"] for a in expiring] == ["A-SOON"]
    # The next visit counts 5 (untracked 2 and then A-SOON went first: 9-4 = 5 left
    # means A-SOON is down to 0... no: 2 untracked + 2 of A-SOON were vended).
    second = client.post("/api/v1/visits", json={"machine_id": "vis-001", "slots": [{
        "slot": 1, "found": 5,
        "removed": [{"reason": "expired", "lot_number": "A-SOON", "quantity": 2}]}]})
    assert second.status_code == 201, second.text
    assert second.json()["counts"] == {"1": 3}
    lots = client.get("/api/v1/machines/vis-001/lots").json()["data"]
    assert [(lot["lot_number"], lot["quantity"]) for lot in lots] == [("B-LATE", 3)]
    assert _open(session, "expiring_stock") == []  # the lot is gone: resolved


def test_visit_bounds_and_scope(
    client: httpx.Client, session: Session, auth_headers: AuthHeaders
) -> None:
    register(session, "vis-002", count=5, capacity=6, area="north")
    register(session, "vis-003", count=5, capacity=6, area="south")
    over = {"machine_id": "vis-002", "slots": [{"slot": 1, "loaded": [_lot("X1", 300, 2)]}]}
    answer = client.post("/api/v1/visits", json=over)
    assert answer.status_code == 422
    assert "at most 6" in answer.json()["detail"]
    unknown = {"machine_id": "vis-002", "slots": [{"slot": 1, "removed": [
        {"reason": "damaged", "lot_number": "NOPE", "quantity": 1}]}]}
    assert client.post("/api/v1/visits", json=unknown).status_code == 422
    assert client.post("/api/v1/visits", json={"machine_id": "vis-002", "slots": [
        {"slot": 7, "count_after": 1}]}).status_code == 404
    north = auth_headers("outreach", areas=["north"])
    other = {"machine_id": "vis-003", "slots": [{"slot": 1, "count_after": 6}]}
    assert client.post("/api/v1/visits", json=other, headers=north).status_code == 404
    assert client.get("/api/v1/machines/vis-003/lots", headers=north).status_code == 404
    health = auth_headers("health")
    assert client.post("/api/v1/visits", json=other, headers=health).status_code == 403
    assert client.get("/api/v1/machines/vis-003/lots", headers=health).status_code == 200
    session.rollback()  # a new snapshot: the API wrote since
    assert session.exec(select(NaloxoneLot)).all() == []  # nothing half-written


def test_heat_exposure_names_the_lots_to_replace(
    client: httpx.Client, session: Session, settings: Settings, engine: Engine
) -> None:
    register(session, "vis-004", count=0, capacity=10)
    done = client.post("/api/v1/visits", json={"machine_id": "vis-004", "slots": [
        {"slot": 1, "loaded": [_lot("HOT-1", 500, 5)]}]})
    assert done.status_code == 201
    now = utcnow()
    with Session(engine) as write:  # BEGIN IMMEDIATE on SQLite, as the ingest worker does
        lot = write.exec(select(NaloxoneLot)).one()
        lot.loaded_at = now - timedelta(hours=10)
        write.add(lot)
        write.add_all([
            TemperatureReading(machine_id="vis-004", at=now - timedelta(hours=9), celsius=22.0),
            TemperatureReading(machine_id="vis-004", at=now - timedelta(hours=8), celsius=43.0),
            TemperatureReading(machine_id="vis-004", at=now - timedelta(hours=7), celsius=21.0),
        ])
        write.flush()
        assert sweep_lot_alerts(write, settings=settings, now=now) == 1
        write.commit()
    [alert] = _open(session, "heat_exposure")
    assert "HOT-1" in alert.message
    assert alert.details["lots"][0]["outside_excursion_min"] == 60.0
    [replace] = lots_to_replace(session, "vis-004", settings=settings, now=now)
    assert replace.lot.lot_number == "HOT-1"
    assert replace.replace_because == ("heat:excursion_range",)
    # Another lot put in (by hand, as loaded 10 h ago) got as hot: the open alert names it too.
    with Session(engine) as write:
        write.add(NaloxoneLot(product=PRODUCT, lot_number="HOT-2", machine_id="vis-004", slot=1,
                              expiry=date.today() + timedelta(days=600), quantity=3,
                              loaded_at=now - timedelta(hours=10)))
        slot = write.get(Slot, ("vis-004", 1))
        assert slot is not None
        slot.count = 8
        write.add(slot)
        write.flush()
        sweep_lot_alerts(write, settings=settings, now=now)
        write.commit()
    [alert] = _open(session, "heat_exposure")
    assert "HOT-1" in alert.message
    assert "HOT-2" in alert.message
    assert [lot["lot_number"] for lot in alert.details["lots"]] == ["HOT-1", "HOT-2"]
    # The team swaps the lots: the alert is resolved by the visit.
    swap = client.post("/api/v1/visits", json={"machine_id": "vis-004", "slots": [{
        "slot": 1, "removed": [{"reason": "heat_exposed", "lot_number": "HOT-1", "quantity": 5},
                               {"reason": "heat_exposed", "lot_number": "HOT-2", "quantity": 3}],
        "loaded": [_lot("COOL-2", 500, 5)]}]})
    assert swap.status_code == 201, swap.text
    assert swap.json()["resolved_alerts"] == 1
    assert _open(session, "heat_exposure") == []


def test_retries_racing_each_other_record_the_visit_once(
    client: httpx.Client, session: Session
) -> None:
    register(session, "vis-005", count=0, capacity=10)
    body = {"machine_id": "vis-005", "slots": [{"slot": 1, "loaded": [_lot("R-1", 400, 6)]}]}
    headers = {"Idempotency-Key": "racing-key"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(
            lambda _: client.post("/api/v1/visits", json=body, headers=headers), range(4)))
    assert {a.status_code for a in answers} <= {201, 409}
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1
    session.rollback()  # a new snapshot: the API wrote since
    assert len(session.exec(select(RestockVisit).where(
        col(RestockVisit.machine_id) == "vis-005")).all()) == 1
    assert session.exec(select(NaloxoneLot.quantity)).one() == 6


def test_the_counts_only_visit_trims_lots_earliest_expiry_first(
    client: httpx.Client, session: Session
) -> None:
    register(session, "vis-006", count=0, capacity=10)
    loaded = client.post("/api/v1/visits", json={"machine_id": "vis-006", "slots": [{
        "slot": 1, "loaded": [_lot("LATE", 500, 4), _lot("SOON", 200, 4)]}]})
    assert loaded.status_code == 201
    old = client.post("/api/v1/machines/vis-006/restock-visits", json={"counts": {"1": 5}})
    assert old.status_code == 201
    lots = client.get("/api/v1/machines/vis-006/lots").json()["data"]
    assert [(lot["lot_number"], lot["quantity"]) for lot in lots] == [("SOON", 1), ("LATE", 4)]
