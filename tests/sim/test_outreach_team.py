"""The demo's outreach team issues the backend's plan and records each visit as it loads it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from simulators.outreach_team import OutreachTeam, TeamSettings, lot_number, visit_body

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def _line(slot: int, product: str, *, par: int, naloxone: bool = True,
          replace_lots: list[str] | None = None) -> dict[str, Any]:
    return {"slot": slot, "product": product, "is_naloxone": naloxone, "count": 0, "par": par,
            "to_par": par, "replace": 0, "replace_lots": replace_lots or [], "quantity": par}


def _stop(machine_id: str, minutes: int, *lines: dict[str, Any]) -> dict[str, Any]:
    return {"machine_id": machine_id, "arrival": (T0 + timedelta(minutes=minutes)).isoformat(),
            "load": list(lines)}


def test_a_visit_takes_out_the_named_lots_and_fills_each_slot_to_par() -> None:
    stop = _stop("m-1", 10, _line(1, "naloxone-nasal-4mg", par=10, replace_lots=["OLD"]),
                 _line(3, "fentanyl-test-strips", par=16, naloxone=False))
    lots = [{"slot": 1, "lot_number": "OLD", "quantity": 2,
             "replace_because": ["heat:storage_range"]},
            {"slot": 1, "lot_number": "KEEP", "quantity": 1, "replace_because": []}]
    body, after = visit_body(stop, {1: 3, 3: 5}, lots, date(2026, 12, 3))
    one, three = body["slots"]
    assert one["removed"] == [{"reason": "heat_exposed", "quantity": 2, "lot_number": "OLD"}]
    # 3 found, 2 taken out: 9 go in from the van's lot (two years' shelf life), to par 10.
    assert one["loaded"] == [{"lot_number": lot_number(date(2026, 12, 3)),
                              "product": "naloxone-nasal-4mg", "expiry": "2028-12-02",
                              "quantity": 9}]
    assert one["count_after"] == 10
    assert "loaded" not in three  # lots are kept for naloxone only
    assert (three["count_after"], after) == (16, {1: 10, 3: 16})


class _Fleet:
    def __init__(self) -> None:
        self.counts = {"m-1": {1: 2}, "m-2": {1: 0}}
        self.restocked: list[tuple[str, dict[int, int]]] = []

    def now(self) -> datetime:
        return T0

    def stock(self, machine_id: str) -> dict[int, int]:
        return dict(self.counts[machine_id])

    def restock(self, machine_id: str, counts: Mapping[int, int]) -> None:
        self.restocked.append((machine_id, dict(counts)))
        self.counts[machine_id].update(counts)


def test_the_team_issues_a_plan_each_shift_and_visits_stops_as_the_clock_reaches_them() -> None:
    requests: list[httpx.Request] = []
    plan = {"id": 7, "plan": {"distance_km": 3.0, "vans": [
        {"stops": [_stop("m-2", 40, _line(1, "naloxone-nasal-4mg", par=10)),
                   _stop("m-1", 15, _line(1, "naloxone-nasal-4mg", par=10))]}]}}

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.path == "/api/v1/restock/plans":
            return httpx.Response(201, json=plan)
        return httpx.Response(201, json={"id": len(requests)})

    fleet = _Fleet()
    client = httpx.Client(base_url="http://backend", transport=httpx.MockTransport(answer))
    team = OutreachTeam(fleet, client, TeamSettings(depot=(39.95, -75.16), visit_every_s=0))
    team.tick(T0)
    [issued] = requests
    assert json.loads(issued.content) == {"depot": "39.95000,-75.16000",
                                          "shift_start": T0.isoformat(), "shift_hours": 8.0,
                                          "vans": 1}
    team.tick(T0 + timedelta(minutes=20))  # m-1 is due (15 min), m-2 not yet (40 min)
    assert [r.url.path for r in requests[1:]] == ["/api/v1/visits"]
    assert json.loads(requests[1].content)["machine_id"] == "m-1"
    assert requests[1].headers["Idempotency-Key"]
    assert fleet.restocked == [("m-1", {1: 10})]
    team.tick(T0 + timedelta(hours=1))
    assert fleet.restocked[-1] == ("m-2", {1: 10})  # one visit per look at the clock
    assert requests[2].headers["Idempotency-Key"] != requests[1].headers["Idempotency-Key"]
    assert (team.stats.plans, team.stats.visits, team.stats.last_plan_id) == (1, 2, 7)
    team.tick(T0 + timedelta(hours=24))  # the next shift: a new plan
    assert requests[3].url.path == "/api/v1/restock/plans"
    assert team.stats.plans == 2
