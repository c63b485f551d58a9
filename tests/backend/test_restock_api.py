"""``GET /api/v1/restock/plan`` over real HTTP on SQLite and PostgreSQL, and ``nx-backend restock
plan`` on SQLite (the same plan_shift underneath)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from backend import crud
from backend.app import create_app
from backend.cli import app
from backend.config import Settings
from backend.db import make_engine, migrate
from backend.models import Machine, NaloxoneLot, utcnow
from tests.backend.conftest import AuthHeaders, bearer, make_token
from tests.backend.procs import REPO
from tests.http_server import serve_http

DEPOT = "40.75,-73.98"
SHIFT = {"depot": DEPOT, "shift_start": "2026-12-03T08:00:00Z", "shift_hours": 6, "vans": 2}
NALOXONE = "naloxone-nasal-4mg"


def _machine(session: Session, machine_id: str, lat: float, *, naloxone: int, strips: int,
             area: str = "north", in_service: bool = True) -> None:
    crud.register_machine(
        session=session, machine_id=machine_id, name=f"Machine {machine_id}", lat=lat,
        lon=-73.98, area=area, actor="test",
        slots=[{"slot": 1, "product": NALOXONE, "capacity": 10, "count": naloxone,
                "par": 8, "low_threshold": 2},
               {"slot": 2, "product": "fentanyl-test-strips", "capacity": 20, "count": strips,
                "low_threshold": 3}])
    if not in_service:
        machine = session.get(Machine, machine_id)
        assert machine is not None
        machine.in_service = False
        session.add(machine)
        session.commit()


def _fleet(session: Session) -> None:
    _machine(session, "test-001", 40.76, naloxone=0, strips=20)  # naloxone out: critical
    # Half below par, on the way (1.4 km from the depot): a routine top-up.
    _machine(session, "test-002", 40.74, naloxone=4, strips=20)
    _machine(session, "test-003", 40.77, naloxone=8, strips=20)  # full, but see its lots
    _machine(session, "test-004", 40.73, naloxone=8, strips=0)  # strips out: urgent
    # Strips low but not out, naloxone full: it can wait for a shift that passes by.
    _machine(session, "test-007", 40.70, naloxone=8, strips=1)
    _machine(session, "test-005", 40.72, naloxone=0, strips=20, in_service=False)
    _machine(session, "test-006", 40.78, naloxone=0, strips=0, area="south")
    # test-003 is full, but 3 of its 8 doses are from an expired lot: swap them.
    session.add(NaloxoneLot(product=NALOXONE, lot_number="EXP-1", expiry=utcnow().date()
                            - timedelta(days=1), machine_id="test-003", slot=1, quantity=3))
    session.add(NaloxoneLot(product=NALOXONE, lot_number="GOOD-1", expiry=utcnow().date()
                            + timedelta(days=400), machine_id="test-003", slot=1, quantity=5))
    session.commit()


@pytest.fixture
def http(migrated_url: str) -> Iterator[httpx.Client]:
    settings = Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0,
                        restock_solver_seconds=0.2)
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture
def sqlite_app(tmp_path: os.PathLike[str]) -> Iterator[tuple[str, str, Session]]:
    """A migrated SQLite database with the fleet: its URL, an admin token and a session."""
    url = f"sqlite:///{os.path.join(tmp_path, 'nx.db')}"
    migrate(url)
    token = make_token(url, "admin")
    engine = make_engine(url, immediate=True)
    try:
        with Session(engine, expire_on_commit=False) as s:
            _fleet(s)
            s.commit()
            yield url, token, s
    finally:
        engine.dispose()


def test_plan_orders_stops_loads_to_par_says_who_is_left_out_and_keeps_to_areas(
    http: httpx.Client, session: Session, auth_headers: AuthHeaders
) -> None:
    _fleet(session)
    answer = http.get("/api/v1/restock/plan", params=SHIFT, headers=auth_headers("outreach"))
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert len(plan["vans"]) == 2
    stops = {s["machine_id"]: s for v in plan["vans"] for s in v["stops"]}
    assert set(stops) == {"test-001", "test-002", "test-003", "test-004", "test-006"}
    assert stops["test-001"]["urgency"] == "critical"
    assert stops["test-004"]["urgency"] == "urgent"
    assert stops["test-002"]["urgency"] == "routine"
    # Naloxone to its par of 8; strips (no par) to their capacity of 20.
    assert [(x["slot"], x["product"], x["quantity"]) for x in stops["test-001"]["load"]] == [
        (1, NALOXONE, 8)]
    assert [(x["slot"], x["quantity"]) for x in stops["test-004"]["load"]] == [(2, 20)]
    # Expired doses must be out before the next shift: critical.
    assert stops["test-003"]["urgency"] == "critical"
    assert [(x["slot"], x["to_par"], x["replace"], x["replace_lots"], x["quantity"])
            for x in stops["test-003"]["load"]] == [(1, 0, 3, ["EXP-1"], 3)]
    assert plan["left_out"][0] == {"machine_id": "test-005", "urgency": "critical", "items": 8,
                                   "reason": "out of service"}
    [(far, reason)] = [(o["machine_id"], o["reason"]) for o in plan["left_out"][1:]]
    assert far == "test-007"
    assert reason.startswith("routine: ")
    assert "from the nearest pressing stop" in reason
    start = datetime.fromisoformat(SHIFT["shift_start"])
    for van in plan["vans"]:
        times = [datetime.fromisoformat(s["arrival"]) for s in van["stops"]]
        assert times == sorted(times)
        assert [s["order"] for s in van["stops"]] == list(range(1, len(times) + 1))
        assert all(start < t for t in times)
        assert datetime.fromisoformat(van["return_time"]) <= start + timedelta(hours=6)
        assert van["items"] == sum(p["quantity"] for p in van["load_list"]) == sum(
            s["items"] for s in van["stops"])
    assert plan["distance_km"] == pytest.approx(sum(v["distance_km"] for v in plan["vans"]))
    assert plan["distance_source"] == "haversine x 1.3 at 25 km/h"
    # An outreach token limited to an area plans its area only; health may not plan.
    south = http.get("/api/v1/restock/plan", params=SHIFT,
                     headers=auth_headers("outreach", areas=["south"])).json()
    assert [s["machine_id"] for v in south["vans"] for s in v["stops"]] == ["test-006"]
    assert south["left_out"] == []
    refused = http.get("/api/v1/restock/plan", params=SHIFT, headers=auth_headers("health"))
    assert refused.status_code == 403


BAD_INPUTS = [
    ({"depot": "95,10"}, "latitude"),
    ({"depot": "north pole"}, "depot"),
    ({"vans": 51}, "vans"),
    ({"vans": 0}, "vans"),
    ({"shift_hours": 25}, "shift_hours"),
    ({"shift_start": "1999-12-31T23:00:00Z"}, "between 2000 and 2100"),
]


def test_bad_inputs_are_refused_with_a_problem_and_a_bad_matrix_file_is_a_503(
    sqlite_app: tuple[str, str, Session], tmp_path: os.PathLike[str]
) -> None:
    url, token, _ = sqlite_app
    bad = os.path.join(tmp_path, "matrix.json")
    with open(bad, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    settings = Settings(environment="test", database_url=url, restock_matrix_file=bad)
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=30, headers=bearer(token)) as client:
        for change, where in BAD_INPUTS:
            answer = client.get("/api/v1/restock/plan", params={**SHIFT, **change})
            assert answer.status_code == 422, change
            assert answer.headers["content-type"] == "application/problem+json"
            assert where in answer.text, change
        answer = client.get("/api/v1/restock/plan", params=SHIFT)
    assert answer.status_code == 503
    assert "cannot read" in answer.json()["detail"]


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url,
           "NX_RESTOCK_SOLVER_SECONDS": "0.2"}
    return subprocess.run([sys.executable, "-c", "from backend.cli import main; main()",
                           "restock", "plan", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def _needs(plan: dict[str, Any]) -> dict[str, str]:
    """Each machine that needed a visit (on a route or left out) and its urgency."""
    routed = {s["machine_id"]: s["urgency"] for v in plan["vans"] for s in v["stops"]}
    return routed | {m["machine_id"]: m["urgency"] for m in plan["left_out"]}


def _loads(plan: dict[str, Any]) -> dict[str, Any]:
    return {s["machine_id"]: s["load"] for v in plan["vans"] for s in v["stops"]}


def test_cli_prints_the_same_plan_as_json(sqlite_app: tuple[str, str, Session]) -> None:
    url, token, _ = sqlite_app
    done = _cli(url, "--depot", DEPOT, "--shift-start", "2026-12-03T08:00:00Z",
                "--shift-hours", "6", "--vans", "2")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    settings = Settings(environment="test", database_url=url, restock_solver_seconds=0.2)
    with serve_http(create_app(settings)) as base_url:
        served = httpx.get(f"{base_url}/api/v1/restock/plan", params=SHIFT,
                           headers=bearer(token), timeout=30).json()
    # Which stops make the routes depends on how far the solver got in its wall-clock
    # budget (tens of milliseconds for a handful of stops), so on a loaded machine two
    # runs can differ there. What must not differ: the machines that needed a visit and
    # how urgent each was, and what a stop on both plans loads.
    assert set(printed) == set(served)
    assert _needs(printed) == _needs(served)
    for machine_id, loads in _loads(printed).items():
        assert loads == _loads(served).get(machine_id, loads), machine_id
    # Refusals need no second interpreter: the same command, run in this process.
    refused = CliRunner().invoke(app, ["restock", "plan", "--depot", "200,0"])
    assert refused.exit_code == 2
    assert "latitude" in refused.output


def test_an_issued_plan_is_stored_audited_and_its_stops_are_the_next_planned_visits(
    http: httpx.Client, session: Session, auth_headers: AuthHeaders
) -> None:
    from sqlmodel import col, select

    from backend.models import AuditRecord, PlannedVisit
    from backend.restock.schedule import next_planned_visits

    _fleet(session)
    answer = http.post("/api/v1/restock/plans", json=SHIFT, headers=auth_headers("outreach"))
    assert answer.status_code == 201, answer.text
    issued = answer.json()
    assert issued["issued_by"] == "test-outreach"
    stops = {s["machine_id"]: s for v in issued["plan"]["vans"] for s in v["stops"]}
    assert "test-001" in stops
    session.rollback()  # a new read: see the requests' commits
    arrivals = next_planned_visits(session, after=datetime.fromisoformat(SHIFT["shift_start"]))
    assert arrivals == {m: datetime.fromisoformat(s["arrival"]) for m, s in stops.items()}
    [audit] = session.exec(select(AuditRecord).where(
        col(AuditRecord.action) == "restock_plan.issue")).all()
    assert (audit.actor, audit.object_id) == ("test-outreach", str(issued["id"]))
    again = http.get(f"/api/v1/restock/plans/{issued['id']}", headers=auth_headers("admin"))
    assert again.status_code == 200
    assert again.json() == issued
    # Its stops include a machine in the south: hidden from a token limited to the north.
    hidden = http.get(f"/api/v1/restock/plans/{issued['id']}",
                      headers=auth_headers("outreach", areas=["north"]))
    assert hidden.status_code == 404
    assert http.get("/api/v1/restock/plans/99999", headers=auth_headers("admin")
                    ).status_code == 404
    assert http.post("/api/v1/restock/plans", json=SHIFT, headers=auth_headers("health")
                     ).status_code == 403
    assert http.post("/api/v1/restock/plans", json={**SHIFT, "depot": "95,10"},
                     headers=auth_headers("admin")).status_code == 422
    # Re-planning the same shift supersedes the first plan's stops.
    second = http.post("/api/v1/restock/plans", json={**SHIFT, "vans": 1},
                       headers=auth_headers("admin"))
    assert second.status_code == 201
    session.rollback()  # a new read: see the requests' commits
    live = session.exec(select(PlannedVisit.plan_id).where(
        col(PlannedVisit.superseded).is_(False))).all()
    assert set(live) == {second.json()["id"]}
    # Listed newest first, a page at a time, as the caller may see them.
    listed = http.get("/api/v1/restock/plans", headers=auth_headers("outreach"))
    assert listed.status_code == 200, listed.text
    assert listed.json()["count"] == 2
    assert [p["id"] for p in listed.json()["data"]] == [second.json()["id"], issued["id"]]
    assert listed.json()["data"][1] == issued
    page = http.get("/api/v1/restock/plans", params={"limit": 1, "offset": 1},
                    headers=auth_headers("admin")).json()
    assert (page["count"], [p["id"] for p in page["data"]]) == (2, [issued["id"]])
    # Both visit the south: a token limited to the north sees neither, the south both.
    north = http.get("/api/v1/restock/plans", headers=auth_headers("outreach", areas=["north"]))
    assert north.json() == {"data": [], "count": 0}
    south_only = http.post("/api/v1/restock/plans", json=SHIFT,
                           headers=auth_headers("outreach", areas=["south"]))
    assert south_only.status_code == 201
    south = http.get("/api/v1/restock/plans", headers=auth_headers("outreach", areas=["south"]))
    assert [p["id"] for p in south.json()["data"]] == [south_only.json()["id"]]
    assert http.get("/api/v1/restock/plans", headers=auth_headers("health")).status_code == 403
    assert http.get("/api/v1/restock/plans", params={"limit": 0},
                    headers=auth_headers("admin")).status_code == 422


def test_a_planned_stop_whose_time_passed_without_a_visit_is_overdue_next_shift(
    http: httpx.Client, session: Session, auth_headers: AuthHeaders
) -> None:
    from backend.models import RestockVisit

    _fleet(session)
    headers = auth_headers("outreach")
    issued = http.post("/api/v1/restock/plans", json=SHIFT, headers=headers)
    assert issued.status_code == 201, issued.text
    stops = {s["machine_id"]: s for v in issued.json()["plan"]["vans"] for s in v["stops"]}
    assert stops["test-002"]["urgency"] == "routine"
    tomorrow = {**SHIFT, "shift_start": "2026-12-04T08:00:00Z"}
    # Nobody came to test-002: tomorrow it is overdue, and urgent.
    plan = http.get("/api/v1/restock/plan", params=tomorrow, headers=headers).json()
    later = {s["machine_id"]: s for v in plan["vans"] for s in v["stops"]}
    arrival = datetime.fromisoformat(stops["test-002"]["arrival"])
    assert later["test-002"]["urgency"] == "urgent"
    assert later["test-002"]["reasons"] == [
        f"planned visit at {arrival:%Y-%m-%d %H:%M} UTC was missed"]
    # A visit recorded since the plan was issued made the stop: routine again.
    session.add(RestockVisit(machine_id="test-002", visited_by="test", counts={}))
    session.commit()
    plan = http.get("/api/v1/restock/plan", params=tomorrow, headers=headers).json()
    again = {s["machine_id"]: s for v in plan["vans"] for s in v["stops"]}
    assert again["test-002"]["urgency"] == "routine"
    # The same shift planned again: its stops have not passed, nothing is missed.
    plan = http.get("/api/v1/restock/plan", params=SHIFT, headers=headers).json()
    assert not any("missed" in r for v in plan["vans"] for s in v["stops"] for r in s["reasons"])
