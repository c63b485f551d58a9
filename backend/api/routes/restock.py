"""Restock plans: the vans' routes for a shift, with what to load at each stop.

``GET /restock/plan`` answers a plan and keeps nothing. ``POST /restock/plans``
issues one: the plan is stored and its stops become the machines' next planned
visits, which the predicted_stockout alert and later plans take as each
machine's deadline (backend/restock/schedule.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from backend.api.deps import (
    ForecastSettingsDep,
    PrincipalDep,
    RequestIdDep,
    SessionDep,
    SettingsDep,
    WriteSessionDep,
)
from backend.api.problems import problem_responses
from backend.api.schemas import RowId
from backend.audit import record_audit
from backend.auth.principal import Principal
from backend.config import Settings
from backend.forecast.settings import ForecastSettings
from backend.models import RestockPlanRecord
from backend.restock.forecast_input import forecast_extras
from backend.restock.inputs import DEPOT_PATTERN, parse_depot, shift_start_of
from backend.restock.lots_input import combined, lot_extras
from backend.restock.model import Plan
from backend.restock.plan import MatrixFileError, plan_shift
from backend.restock.schedule import issue_plan, list_plans, sees_plan

router = APIRouter(prefix="/restock", tags=["restock"])

DEPOT_DESCRIPTION = "Where the vans start and end: LAT,LON (WGS 84)"


def _plan(
    session: Session, settings: Settings, forecast_settings: ForecastSettings,
    principal: Principal, *, depot: str, shift_start: datetime | None, shift_hours: float,
    vans: int, van_capacity: int | None,
) -> Plan:
    """Plan one shift as the caller may see it; 422 for bad inputs, 503 for a bad matrix file."""
    try:
        point = parse_depot(depot)
        start = shift_start_of(shift_start)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    try:
        return plan_shift(session, settings, depot=point, start=start, hours=shift_hours,
                          vans=vans, van_capacity=van_capacity, principal=principal,
                          extras=combined(
                              forecast_extras(session, shift_start=start,
                                              shift_hours=shift_hours,
                                              settings=forecast_settings),
                              lot_extras(session, settings=settings)),
                          next_shift=start + timedelta(hours=forecast_settings.horizon_h))
    except MatrixFileError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None


@router.get(
    "/plan",
    response_model=Plan,
    # 503: the distance matrix file (NX_RESTOCK_MATRIX_FILE) cannot be used.
    responses=problem_responses(422, 503),
)
def restock_plan(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    forecast_settings: ForecastSettingsDep,
    depot: Annotated[str, Query(pattern=DEPOT_PATTERN, max_length=64,
                                description=DEPOT_DESCRIPTION,
                                examples=["40.7128,-74.0060"])],
    shift_start: Annotated[datetime | None, Query(
        description="When the vans leave (ISO 8601; no offset means UTC; default now)")] = None,
    shift_hours: Annotated[float, Query(ge=0.25, le=24, description="Length of the shift")] = 8,
    vans: Annotated[int, Query(ge=1, le=50, description="Vans on the road")] = 1,
    van_capacity: Annotated[int | None, Query(
        ge=1, le=100_000, description="Items a van carries (default NX_RESTOCK_VAN_CAPACITY)")
    ] = None,
) -> Plan:
    """Plan the vans' routes for one shift over the machines the caller may see.

    Each van's stops come in order with arrival times and what to load per
    slot; machines that needed a visit and are on no route are listed with the
    reason. Critical stops (naloxone out) come before urgent (open alerts), and
    those before routine ones (below par only). See docs/restock.md.
    """
    return _plan(session, settings, forecast_settings, principal, depot=depot,
                 shift_start=shift_start, shift_hours=shift_hours, vans=vans,
                 van_capacity=van_capacity)


class PlanRequest(BaseModel):
    """The shift to plan and issue: the same inputs as ``GET /restock/plan``."""

    model_config = ConfigDict(extra="forbid")

    depot: str = Field(pattern=DEPOT_PATTERN, max_length=64, description=DEPOT_DESCRIPTION,
                       examples=["40.7128,-74.0060"])
    shift_start: datetime | None = Field(
        default=None, description="When the vans leave (ISO 8601; no offset means UTC; "
        "default now)")
    shift_hours: float = Field(default=8, ge=0.25, le=24)
    vans: int = Field(default=1, ge=1, le=50)
    van_capacity: int | None = Field(default=None, ge=1, le=100_000)


class IssuedPlan(BaseModel):
    """A plan as issued: its id, who issued it and when, and the plan."""

    id: int
    issued_at: datetime
    issued_by: str
    plan: Plan


def _issued(record: RestockPlanRecord) -> IssuedPlan:
    return IssuedPlan(id=record.id or 0, issued_at=record.issued_at, issued_by=record.issued_by,
                      plan=Plan.model_validate(record.body))


@router.post(
    "/plans",
    response_model=IssuedPlan,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(422, 503),
)
def issue_restock_plan(
    body: PlanRequest,
    session: SessionDep,
    write: WriteSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    forecast_settings: ForecastSettingsDep,
    request_id: RequestIdDep,
) -> IssuedPlan:
    """Plan a shift and issue it: the stops become the machines' next planned visits.

    A plan issued later for an overlapping shift supersedes this one's stops in
    that shift. The forecast's predicted_stockout alert then asks whether a
    machine runs out before its planned visit (docs/restock.md).
    """
    # Planned on a read session: on SQLite the write lock is taken only to store the
    # plan, not for the second the forecast and the solver take (ingest and token
    # bookkeeping would wait for it).
    plan = _plan(session, settings, forecast_settings, principal, depot=body.depot,
                 shift_start=body.shift_start, shift_hours=body.shift_hours, vans=body.vans,
                 van_capacity=body.van_capacity)
    session.rollback()
    record = issue_plan(write, plan, by=principal.name)
    record_audit(write, actor=principal.name, action="restock_plan.issue",
                 object_type="restock_plan", object_id=record.id or 0,
                 after={"shift_start": plan.shift_start.isoformat(),
                        "shift_end": plan.shift_end.isoformat(), "vans": len(plan.vans),
                        "stops": [[s.machine_id for s in v.stops] for v in plan.vans],
                        "distance_km": plan.distance_km},
                 request_id=request_id)
    write.commit()
    write.refresh(record)
    return _issued(record)


class IssuedPlansPage(BaseModel):
    """One page of issued plans, newest first, and how many the caller may see in all."""

    data: list[IssuedPlan]
    count: int


@router.get("/plans", response_model=IssuedPlansPage)
def list_restock_plans(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Plans per page")] = 20,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> IssuedPlansPage:
    """List issued plans, newest first (a token limited to areas: plans wholly in them)."""
    rows, total = list_plans(session, principal=principal, limit=limit, offset=offset)
    return IssuedPlansPage(data=[_issued(r) for r in rows], count=total)


@router.get("/plans/{plan_id}", response_model=IssuedPlan, responses=problem_responses(404))
def get_restock_plan(plan_id: RowId, session: SessionDep, principal: PrincipalDep
                     ) -> IssuedPlan:
    """Return an issued plan (404 when it visits a machine the caller cannot see)."""
    record = session.get(RestockPlanRecord, plan_id)
    if record is None or not sees_plan(session, plan_id, principal):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"restock plan {plan_id} not found")
    return _issued(record)
