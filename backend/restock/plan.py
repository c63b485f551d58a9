"""Assemble the planner's inputs from the database and plan a shift: the thin I/O layer.

What it reads today: active machines (within the caller's areas), their slots
against par, the products that are naloxone, open alerts, and issued plans' stops
whose time passed with no visit (overdue: ``schedule.missed_planned_visits``). The forecast
(stock-out before the next shift) and the lots module (doses to replace) plug
in through ``SlotExtra`` per (machine, slot): see ``extras`` in ``plan_shift``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from backend import crud
from backend.auth.principal import Principal
from backend.auth.scope import machine_filter
from backend.config import Settings
from backend.models import Machine, Product
from backend.restock.distances import (
    DEPOT,
    MatrixFileError,
    from_coordinates,
    from_file,
    read_matrix_file,
)
from backend.restock.model import LeftOut, Matrix, Plan, Point, Shift, Stop
from backend.restock.needs import Horizon, MachineState, ServiceTime, SlotState, stops_for
from backend.restock.routing import left_out_order, solve
from backend.restock.schedule import missed_planned_visits
from backend.stock import effective_low_threshold

__all__ = ["MatrixFileError", "SlotExtra", "machine_states", "plan_shift"]


@dataclass(frozen=True)
class SlotExtra:
    """What the forecast and the lots module add to a slot (none of it known without them)."""

    stockout_before_next_shift: bool = False
    replace: int = 0
    replace_lots: tuple[str, ...] = ()
    # When the doses to replace must be out (now: expired or heat-exposed; else expiry).
    replace_by: datetime | None = None
    # When the forecast says the slot may run out during the shift (reach it before).
    due: datetime | None = None


NO_EXTRA = SlotExtra()


def machine_states(
    session: Session,
    *,
    principal: Principal | None,
    default_threshold: int,
    extras: Mapping[tuple[str, int], SlotExtra] | None = None,
    missed: Mapping[str, datetime] | None = None,
) -> tuple[list[MachineState], set[str]]:
    """Return the active machines the caller may see, and the ids of those out of service."""
    query = select(Machine).where(col(Machine.active)).order_by(col(Machine.id))
    if principal is not None:
        query = query.where(machine_filter(principal))
    machines = list(session.exec(query).all())
    ids = [m.id for m in machines]
    slots = crud.slots_of(session=session, machine_ids=ids)
    alerts = crud.open_alert_types(session=session, machine_ids=ids)
    naloxone = set(session.exec(select(Product.code).where(col(Product.is_naloxone))).all())
    extras = extras or {}
    states = []
    for m in machines:
        own = []
        for s in slots[m.id]:
            extra = extras.get((m.id, s.slot), NO_EXTRA)
            own.append(SlotState(
                slot=s.slot, product=s.product, is_naloxone=s.product in naloxone,
                count=s.count, capacity=s.capacity, par=s.par,
                low_threshold=effective_low_threshold(s.low_threshold, default_threshold),
                replace=extra.replace, replace_lots=extra.replace_lots,
                replace_by=extra.replace_by,
                stockout_before_next_shift=extra.stockout_before_next_shift, due=extra.due))
        states.append(MachineState(m.id, m.name, Point(m.lat, m.lon), tuple(own),
                                   frozenset(alerts[m.id]), (missed or {}).get(m.id)))
    out_of_service = {m.id for m in machines if not m.in_service}
    return states, out_of_service


def _matrix(settings: Settings, depot: Point, stops: list[Stop]) -> tuple[Matrix, list[Stop],
                                                                          list[Stop]]:
    """Return the matrix over the stops it covers, those stops, and the ones it does not."""
    if settings.restock_matrix_file is None:
        return from_coordinates(depot, [s.at for s in stops],
                                detour_factor=settings.restock_detour_factor,
                                speed_kmh=settings.restock_speed_kmh), stops, []
    ids, distance, duration = read_matrix_file(settings.restock_matrix_file)
    known = set(ids) - {DEPOT}
    inside = [s for s in stops if s.machine_id in known]
    outside = [s for s in stops if s.machine_id not in known]
    matrix = from_file(ids, distance, duration, [s.machine_id for s in inside],
                       f"matrix file {settings.restock_matrix_file.name}")
    return matrix, inside, outside


def plan_shift(
    session: Session,
    settings: Settings,
    *,
    depot: Point,
    start: datetime,
    hours: float,
    vans: int,
    van_capacity: int | None = None,
    principal: Principal | None = None,
    extras: Mapping[tuple[str, int], SlotExtra] | None = None,
    next_shift: datetime | None = None,
) -> Plan:
    """Plan one shift from the database's current state (raises MatrixFileError).

    ``next_shift`` (default 24 h after ``start``, as the forecast's horizon) is when a
    machine left out could next be visited: naloxone that must be out before it is critical.
    """
    machines, out_of_service = machine_states(
        session, principal=principal, default_threshold=settings.default_low_threshold,
        extras=extras, missed=missed_planned_visits(session, before=start))
    service = ServiceTime(settings.restock_service_minutes,
                          settings.restock_service_minutes_per_item)
    stops = stops_for(machines, default_par=settings.default_par, service=service,
                      horizon=Horizon.after(start, next_shift or start + timedelta(hours=24)))
    routable = [s for s in stops if s.machine_id not in out_of_service]
    skipped = [(s, "out of service") for s in stops if s.machine_id in out_of_service]
    matrix, routable, unknown = _matrix(settings, depot, routable)
    skipped += [(s, "not in the distance matrix file") for s in unknown]
    shift = Shift(depot=depot, start=start, hours=hours, vans=vans,
                  van_capacity=van_capacity or settings.restock_van_capacity,
                  solver_seconds=settings.restock_solver_seconds)
    plan = solve(shift, routable, matrix)
    if skipped:
        plan.left_out = sorted(
            [*plan.left_out, *(LeftOut(machine_id=s.machine_id, urgency=s.urgency.value,
                                       items=s.items, reason=why) for s, why in skipped)],
            key=left_out_order)
    return plan
