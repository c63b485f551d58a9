"""The demo's outreach team: issues the day's plan through the API and follows the route.

At the start of each shift (the first one when the demo starts, then every
``shift_every`` of simulated time) the team issues a plan with
``POST /api/v1/restock/plans`` using the outreach token, exactly as a lead
would. When the fleet's simulated clock reaches a stop's arrival time the
worker takes out the lots the plan names (their quantities from
``GET /machines/{id}/lots``), records the visit with ``POST /api/v1/visits``
(an ``Idempotency-Key`` per visit, lots loaded with their lot number and
expiry), then loads the machine: what it records is what it loads.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)

SHELF_DAYS = 730
"""Expiry of the lots the team loads: two years after the visit."""
POLL_S = 0.2
"""Real seconds between looks at the simulated clock; at most one visit is made per look,
so a fast simulated clock does not turn into a burst of writes on the backend."""
VISIT_EVERY_S = 1.0
"""Real seconds between two visits at least: each visit resolves alerts, and the demo's
webhook inbox and mail sink live in the same process as the team."""
START_DELAY_S = 10.0
"""Real seconds the team waits before its first plan: the backend is still taking in the
history the fleet has just replayed."""
HTTP_TIMEOUT_S = 30.0


class StockedFleet(Protocol):
    """What the team needs of the fleet (``simulators.fleet.Fleet``)."""

    def now(self) -> datetime:
        """Return the simulated time."""
        ...

    def stock(self, machine_id: str) -> dict[int, int]:
        """Return what each slot of a machine holds."""
        ...

    def restock(self, machine_id: str, counts: Mapping[int, int]) -> None:
        """Set slots of a machine to counts."""
        ...


@dataclass(frozen=True)
class TeamSettings:
    """Where the team's van leaves from and how it works."""

    depot: tuple[float, float]
    vans: int = 1
    shift_hours: float = 8.0
    shift_every: timedelta = timedelta(hours=24)
    start_delay_s: float = START_DELAY_S
    visit_every_s: float = VISIT_EVERY_S


@dataclass
class TeamStats:
    """What the team has done."""

    plans: int = 0
    visits: int = 0
    errors: int = 0
    last_plan_id: int | None = None


def lot_number(day: date) -> str:
    """Return the lot number of what the van carries on ``day``."""
    return f"DEMO-{day:%Y%m%d}"


def removal_reason(replace_because: list[str]) -> str:
    """Return the visit's removal reason for a lot the backend says to replace."""
    return "heat_exposed" if any(r.startswith("heat:") for r in replace_because) else "expired"


def visit_body(stop: Mapping[str, Any], found: Mapping[int, int],
               lots: list[Mapping[str, Any]], today: date) -> tuple[dict[str, Any],
                                                                     dict[int, int]]:
    """Return the visit to record for a planned stop and the counts the slots end with.

    Per slot of the plan's load list: the lots it names are taken out, then the
    slot is filled to its par with the van's lot. Pure.
    """
    slots: list[dict[str, Any]] = []
    after: dict[int, int] = {}
    for line in stop["load"]:
        number = int(line["slot"])
        named = set(line.get("replace_lots") or [])
        removed = [{"reason": removal_reason(list(lot["replace_because"])),
                    "quantity": int(lot["quantity"]), "lot_number": lot["lot_number"]}
                   for lot in lots
                   if lot["slot"] == number and lot["lot_number"] in named
                   and int(lot["quantity"]) > 0]
        left = found.get(number, 0) - sum(r["quantity"] for r in removed)
        if left < 0:  # the books had more of the lot than the slot holds: take what is there
            removed, left = [], found.get(number, 0)
        load = max(0, int(line["par"]) - left)
        entry: dict[str, Any] = {"slot": number, "removed": removed, "count_after": left + load}
        if load and line.get("is_naloxone"):  # lots are kept for naloxone only
            entry["loaded"] = [{"lot_number": lot_number(today), "product": line["product"],
                                "expiry": (today + timedelta(days=SHELF_DAYS)).isoformat(),
                                "quantity": load}]
        slots.append(entry)
        after[number] = left + load
    return {"machine_id": stop["machine_id"], "slots": slots}, after


@dataclass
class OutreachTeam:
    """Issue a plan each shift and visit its stops as the simulated clock reaches them."""

    fleet: StockedFleet
    client: httpx.Client
    settings: TeamSettings
    stats: TeamStats = field(default_factory=TeamStats)
    on_visit: Callable[[str], None] | None = None
    _pending: list[dict[str, Any]] = field(default_factory=list)
    _next_shift: datetime | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Work in a background thread until ``stop``."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="nx-outreach-team", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = HTTP_TIMEOUT_S) -> None:
        """Stop after the request in hand."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        if self._stop.wait(self.settings.start_delay_s):
            return
        while not self._stop.wait(POLL_S):
            try:
                self.tick(self.fleet.now())
            except Exception:
                # One failed request (backend busy) must not end the team's day.
                self.stats.errors += 1
                log.exception("the outreach team's step failed; carrying on")

    def tick(self, now: datetime) -> None:
        """Issue the shift's plan when a shift starts; make the visits that are due."""
        if self._next_shift is None or now >= self._next_shift:
            self._next_shift = now + self.settings.shift_every
            self._issue(now)
        if self._pending and datetime.fromisoformat(self._pending[0]["arrival"]) <= now:
            stop = self._pending.pop(0)
            self._visit(stop, now)
            self._stop.wait(self.settings.visit_every_s)

    def _issue(self, now: datetime) -> None:
        lat, lon = self.settings.depot
        answer = self.client.post("/api/v1/restock/plans", json={
            "depot": f"{lat:.5f},{lon:.5f}", "shift_start": now.isoformat(),
            "shift_hours": self.settings.shift_hours, "vans": self.settings.vans})
        if answer.status_code != 201:
            self.stats.errors += 1
            log.warning("plan refused: %s %s", answer.status_code, answer.text[:300])
            return
        issued = answer.json()
        stops = [s for van in issued["plan"]["vans"] for s in van["stops"]]
        self._pending = sorted(stops, key=lambda s: s["arrival"])
        self.stats.plans += 1
        self.stats.last_plan_id = int(issued["id"])
        log.info("plan %s issued: %d stops, %.1f km", issued["id"], len(stops),
                 issued["plan"]["distance_km"])

    def _visit(self, stop: Mapping[str, Any], now: datetime) -> None:
        machine_id = str(stop["machine_id"])
        lots: list[Mapping[str, Any]] = []
        if any(line.get("replace_lots") for line in stop["load"]):
            answer = self.client.get(f"/api/v1/machines/{machine_id}/lots")
            if answer.status_code == 200:
                lots = answer.json()["data"]
        body, after = visit_body(stop, self.fleet.stock(machine_id), lots, now.date())
        # Recorded first, then loaded: the machine's own restock report then agrees.
        answer = self.client.post("/api/v1/visits", json=body,
                                  headers={"Idempotency-Key": uuid.uuid4().hex})
        if answer.status_code != 201:
            self.stats.errors += 1
            log.warning("visit to %s refused: %s %s", machine_id, answer.status_code,
                        answer.text[:300])
            return
        self.fleet.restock(machine_id, after)
        self.stats.visits += 1
        if self.on_visit is not None:
            self.on_visit(machine_id)
