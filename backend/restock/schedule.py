"""Issued plans and the visits they schedule: the forecast's "next planned visit".

An outreach lead issues a plan (``POST /api/v1/restock/plans``): it is stored
whole, and each of its stops becomes a ``planned_visit`` row. A later plan
whose shift overlaps an earlier one supersedes the earlier one's stops in that
shift (the lead re-planned). The forecast's predicted_stockout alert and the
planner ask, per machine, for its next planned visit: the earliest stop not
superseded with an arrival at or after a given time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from backend.auth.principal import Principal
from backend.auth.scope import machine_filter
from backend.models import Machine, PlannedVisit, RestockPlanRecord, RestockVisit
from backend.restock.model import Plan


def issue_plan(session: Session, plan: Plan, *, by: str) -> RestockPlanRecord:
    """Store ``plan`` and its stops as planned visits, superseding overlapping earlier stops."""
    session.execute(
        update(PlannedVisit)
        .where(col(PlannedVisit.arrival) >= plan.shift_start,
               col(PlannedVisit.arrival) < plan.shift_end,
               col(PlannedVisit.superseded).is_(False))
        .values(superseded=True)
    )
    record = RestockPlanRecord(shift_start=plan.shift_start, shift_end=plan.shift_end,
                               issued_by=by, body=plan.model_dump(mode="json"))
    session.add(record)
    session.flush()
    if record.id is None:  # flushed rows always have their id
        raise RuntimeError("the plan was not given an id")
    session.add_all([
        PlannedVisit(plan_id=record.id, machine_id=stop.machine_id, van=van.van,
                     stop_order=stop.order, arrival=stop.arrival)
        for van in plan.vans for stop in van.stops
    ])
    return record


def next_planned_visits(
    session: Session, *, after: datetime, machine_ids: Iterable[str] | None = None
) -> dict[str, datetime]:
    """Return each machine's earliest planned arrival at or after ``after`` (not superseded)."""
    query = (
        select(PlannedVisit.machine_id, func.min(PlannedVisit.arrival))
        .where(col(PlannedVisit.arrival) >= after, col(PlannedVisit.superseded).is_(False))
        .group_by(col(PlannedVisit.machine_id))
    )
    if machine_ids is not None:
        query = query.where(col(PlannedVisit.machine_id).in_(list(machine_ids)))
    return {machine_id: _aware(arrival) for machine_id, arrival in session.exec(query).all()}


MISSED_LOOKBACK = timedelta(days=7)
"""How far back a planned stop that nobody made still counts as missed."""


def missed_planned_visits(session: Session, *, before: datetime) -> dict[str, datetime]:
    """Return, per machine, its latest planned arrival before ``before`` that no visit followed.

    A stop counts as made when a visit to its machine was recorded after its plan was
    issued: both times are the server's, whatever clock the shifts are planned on. Stops
    superseded by a later plan, or older than ``MISSED_LOOKBACK``, do not count.
    """
    made = (select(RestockVisit.id)
            .where(col(RestockVisit.machine_id) == col(PlannedVisit.machine_id),
                   col(RestockVisit.visited_at) >= col(RestockPlanRecord.issued_at))
            .exists())
    query = (
        select(PlannedVisit.machine_id, func.max(PlannedVisit.arrival))
        .join(RestockPlanRecord, col(RestockPlanRecord.id) == col(PlannedVisit.plan_id))
        .where(col(PlannedVisit.arrival) < before,
               col(PlannedVisit.arrival) >= before - MISSED_LOOKBACK,
               col(PlannedVisit.superseded).is_(False), ~made)
        .group_by(col(PlannedVisit.machine_id))
    )
    return {machine_id: _aware(arrival) for machine_id, arrival in session.exec(query).all()}


def _aware(arrival: datetime | str) -> datetime:
    if isinstance(arrival, str):  # SQLite's min() and max() may hand back the stored text
        arrival = datetime.fromisoformat(arrival)
    return arrival if arrival.tzinfo else arrival.replace(tzinfo=UTC)


def list_plans(
    session: Session, *, principal: Principal, limit: int, offset: int
) -> tuple[list[RestockPlanRecord], int]:
    """Return issued plans the caller may see, newest first, and how many there are in all.

    A token limited to areas sees a plan only when every machine it visits is in
    its areas (as ``sees_plan``); a plan without stops is seen by all.
    """
    query = select(RestockPlanRecord)
    if principal.area_limited:
        visible = select(Machine.id).where(machine_filter(principal))
        elsewhere = select(PlannedVisit.plan_id).where(
            col(PlannedVisit.machine_id).not_in(visible))
        query = query.where(col(RestockPlanRecord.id).not_in(elsewhere))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(RestockPlanRecord.issued_at).desc(),
                                       col(RestockPlanRecord.id).desc())
                        .limit(limit).offset(offset)).all()
    return list(rows), int(total)


def plan_machines(session: Session, plan_id: int) -> set[str]:
    """Return the machines an issued plan visits."""
    return set(session.exec(
        select(PlannedVisit.machine_id).where(col(PlannedVisit.plan_id) == plan_id)).all())


def sees_plan(session: Session, plan_id: int, principal: Principal) -> bool:
    """Say whether ``principal`` may see a plan: every machine it visits is visible to it."""
    if not principal.area_limited:
        return True
    wanted = plan_machines(session, plan_id)
    if not wanted:
        return True
    seen = session.exec(
        select(Machine.id).where(col(Machine.id).in_(sorted(wanted)), machine_filter(principal))
    ).all()
    return set(seen) == wanted
