"""How the simulated outreach team decides its day: plan, weekly or when-empty.

- ``plan``: every morning the backend's planner, fed by the backend's forecast
  and lot rules, picks and orders the stops (``backend.forecast``,
  ``backend.restock``, ``backend.lots``: imported, not copied). At a visit the
  worker takes out the lots the backend says to replace.
- ``weekly``: a fixed round; each machine on the same weekday every week
  (Monday to Friday, the city cut into five sectors around the depot).
- ``when-empty``: every morning, the machines with a slot empty for six hours
  or more (what the demo's team did before it followed the plan).

All three fill every slot to par and drive routes made by the same OR-Tools
solver, so the comparison is about which machines are visited when. Without
the lots system a worker still takes out what the box says has expired.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from backend.forecast.outlook import SlotOutlook, machine_outlook
from backend.forecast.outlook import SlotState as ForecastSlot
from backend.forecast.settings import ForecastSettings
from backend.lots.exposure import exposure
from backend.lots.fefo import LotKey
from backend.lots.store import replace_reasons
from backend.restock.distances import from_coordinates
from backend.restock.forecast_input import extras_from_outlooks, next_visit_deadlines
from backend.restock.lots_input import combined, replace_by
from backend.restock.model import Point, Shift, Stop, Urgency
from backend.restock.needs import (
    Horizon,
    MachineState,
    ServiceTime,
    SlotState,
    stop_for,
    stops_for,
)
from backend.restock.plan import NO_EXTRA, SlotExtra
from backend.restock.routing import solve
from backend.stock import effective_low_threshold
from simulators.restock_city import (
    HISTORY_DAYS,
    SHIFT_HOURS,
    START,
    City,
    MachineSim,
    RemovalRule,
    _default,
    expired_by_date,
)

POLICIES = ("plan", "weekly", "when-empty")
WHEN_EMPTY_AFTER = timedelta(hours=6)
"""The when-empty team comes once a slot has been empty this long (the demo's old rule)."""
WEEKDAYS = 5


class Team:
    """The vans and how a day's stops become routes (shared by every policy)."""

    def __init__(self, city: City, *, vans: int) -> None:
        """Put the depot at the middle of the fleet; take the backend's van settings."""
        specs = city.draw.specs
        self.depot = Point(round(sum(s.lat for s in specs) / len(specs), 4),
                           round(sum(s.lon for s in specs) / len(specs), 4))
        self.vans = vans
        self.capacity = int(_default("restock_van_capacity"))  # type: ignore[call-overload]
        self.solver_seconds = float(_default("restock_solver_seconds"))  # type: ignore[arg-type]
        self.service = ServiceTime(float(_default("restock_service_minutes")),  # type: ignore[arg-type]
                                   float(_default("restock_service_minutes_per_item")))  # type: ignore[arg-type]
        self.detour = float(_default("restock_detour_factor"))  # type: ignore[arg-type]
        self.speed = float(_default("restock_speed_kmh"))  # type: ignore[arg-type]
        self.low = int(_default("default_low_threshold"))  # type: ignore[call-overload]

    def state(self, machine: MachineSim,
              extras: Mapping[tuple[str, int], SlotExtra] | None = None) -> MachineState:
        """Return a machine as the planner reads it from the database."""
        mid = machine.spec.machine_id
        slots = []
        for s in machine.slots.values():
            extra = (extras or {}).get((mid, s.slot), NO_EXTRA)
            slots.append(SlotState(
                slot=s.slot, product=s.product, is_naloxone=s.is_naloxone, count=s.lots.count,
                capacity=s.capacity, par=s.par,
                low_threshold=effective_low_threshold(s.low_threshold, self.low),
                replace=extra.replace, replace_lots=extra.replace_lots,
                replace_by=extra.replace_by,
                stockout_before_next_shift=extra.stockout_before_next_shift, due=extra.due))
        return MachineState(mid, machine.spec.name, Point(machine.spec.lat, machine.spec.lon),
                            tuple(slots))

    def route(self, city: City, stops: list[Stop], shift: datetime) -> list[tuple[str, datetime]]:
        """Route the stops for one shift; count the km; return (machine, arrival) visits."""
        if not stops:
            return []
        started = time.perf_counter()
        matrix = from_coordinates(self.depot, [s.at for s in stops], detour_factor=self.detour,
                                  speed_kmh=self.speed)
        plan = solve(Shift(self.depot, shift, SHIFT_HOURS, self.vans, self.capacity,
                           self.solver_seconds), stops, matrix)
        city.figures.planning_seconds += time.perf_counter() - started
        city.figures.km += plan.distance_km
        city.figures.critical_left_out += sum(1 for o in plan.left_out
                                              if o.urgency == Urgency.CRITICAL.value)
        return [(s.machine_id, s.arrival) for v in plan.vans for s in v.stops]

    def visit_all(self, city: City, machines: list[MachineSim], shift: datetime
                  ) -> list[tuple[str, datetime]]:
        """Route a fixed list of machines, every one a must (a check visit if it needs nothing)."""
        stops = []
        for machine in machines:
            stop = stop_for(self.state(machine), default_par=None, service=self.service)
            if stop is None:
                spec = machine.spec
                stop = Stop(spec.machine_id, spec.name, Point(spec.lat, spec.lon),
                            Urgency.CRITICAL, ("round",), (), self.service.seconds(0))
            stops.append(replace(stop, urgency=Urgency.CRITICAL))
        return self.route(city, stops, shift)


class PlanPolicy:
    """Each morning: the backend's forecast, lot rules and planner choose and order the stops."""

    def __init__(self, team: Team) -> None:
        """Read the forecast's settings as the backend would."""
        self.team = team
        self.forecast = ForecastSettings()
        self.params = self.forecast.params()
        self.expiring_days = int(_default("expiring_stock_days"))  # type: ignore[call-overload]

    def _reasons(self, city: City, machine: MachineSim, key: LotKey, loaded: datetime,
                 now: datetime) -> tuple[str, ...]:
        seen = exposure(machine.readings, loaded, now, max_hold=city.hold)
        return replace_reasons(key.expiry, seen, today=now.date(),
                               expiring_days=self.expiring_days, limits=city.limits)

    def _outlook(self, machine: MachineSim, now: datetime, deadline_h: float
                 ) -> list[SlotOutlook]:
        window = now - timedelta(hours=self.params.history_hours)
        naloxone = [ForecastSlot(s.slot, s.product, s.lots.count, True)
                    for s in machine.slots.values() if s.is_naloxone]
        seen = [(n, t) for n, t in machine.dispenses if t >= window]
        return machine_outlook(naloxone, seen, now=now,
                               since=START - timedelta(days=HISTORY_DAYS),
                               deadline_h=deadline_h, params=self.params, empty=machine.empty)

    def day(self, city: City, shift: datetime) -> list[tuple[str, datetime]]:
        """Plan today's shift from the forecast and the lots; return the visits."""
        started = time.perf_counter()
        ids = list(city.machines)
        # No plan is stored in the simulation: the next visit is the next shift.
        deadlines = next_visit_deadlines(
            ids, {}, now=shift, fallback=shift + timedelta(hours=self.forecast.horizon_h))
        outlooks = {m: self._outlook(city.machines[m], shift, deadlines[m]) for m in ids}
        forecast = extras_from_outlooks(
            outlooks, now=shift, shift_end=shift + timedelta(hours=SHIFT_HOURS),
            open_probability=self.forecast.open_probability)
        lots: dict[tuple[str, int], SlotExtra] = {}
        for mid, machine in city.machines.items():
            for s in machine.slots.values():
                named = [(k, q, why) for k, q in s.lots.lots
                         if (why := self._reasons(city, machine, k, s.loaded_at.get(k, START),
                                                  shift))]
                if named:
                    lots[(mid, s.slot)] = SlotExtra(
                        replace=sum(q for _, q, _ in named),
                        replace_lots=tuple(k.lot_number for k, _, _ in named),
                        replace_by=min(replace_by(why, k.expiry, shift) for k, _, why in named))
        extras = combined(forecast, lots)
        stops = stops_for([self.team.state(m, extras) for m in city.machines.values()],
                          default_par=None, service=self.team.service,
                          horizon=Horizon.after(
                              shift, shift + timedelta(hours=self.forecast.horizon_h)))
        city.figures.planning_seconds += time.perf_counter() - started
        return self.team.route(city, stops, shift)

    def removal(self, city: City, machine: MachineSim, now: datetime) -> set[LotKey]:
        """Take out every lot the backend says to replace (expired, expiring, heat-exposed)."""
        return {k for s in machine.slots.values() for k, _ in s.lots.lots
                if self._reasons(city, machine, k, s.loaded_at.get(k, START), now)}


class WeeklyPolicy:
    """A fixed round: each sector of the city on its weekday, every machine every week."""

    def __init__(self, team: Team, city: City) -> None:
        """Cut the city into five sectors by bearing from the depot, equal in machines."""
        self.team = team
        depot = team.depot

        def bearing(machine: MachineSim) -> float:
            return math.atan2(machine.spec.lat - depot.lat, machine.spec.lon - depot.lon)

        ordered = sorted(city.machines.values(), key=bearing)
        size = math.ceil(len(ordered) / WEEKDAYS)
        self.sectors = [ordered[i * size:(i + 1) * size] for i in range(WEEKDAYS)]
        self.removal: RemovalRule = expired_by_date

    def day(self, city: City, shift: datetime) -> list[tuple[str, datetime]]:
        """Visit today's sector (none at the weekend)."""
        if shift.weekday() >= WEEKDAYS:
            return []
        return self.team.visit_all(city, self.sectors[shift.weekday()], shift)


class WhenEmptyPolicy:
    """Each morning, the machines with a slot empty for ``WHEN_EMPTY_AFTER`` or more."""

    def __init__(self, team: Team) -> None:
        """Use the team's vans."""
        self.team = team
        self.removal: RemovalRule = expired_by_date

    def day(self, city: City, shift: datetime) -> list[tuple[str, datetime]]:
        """Visit every machine with a slot empty long enough."""
        due = [m for m in city.machines.values()
               if any(s.empty_since is not None and shift - s.empty_since >= WHEN_EMPTY_AFTER
                      for s in m.slots.values())]
        return self.team.visit_all(city, due, shift)


Policy = PlanPolicy | WeeklyPolicy | WhenEmptyPolicy


def make_policy(name: str, city: City, *, vans: int) -> Policy:
    """Return the policy called ``name`` for this city."""
    team = Team(city, vans=vans)
    if name == "plan":
        return PlanPolicy(team)
    if name == "weekly":
        return WeeklyPolicy(team, city)
    if name == "when-empty":
        return WhenEmptyPolicy(team)
    raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")
