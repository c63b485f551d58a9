"""Restock plans: the vans' routes for a shift, with what to load at each stop."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from backend.api.deps import ForecastSettingsDep, PrincipalDep, SessionDep, SettingsDep
from backend.api.problems import problem_responses
from backend.restock.forecast_input import forecast_extras
from backend.restock.inputs import DEPOT_PATTERN, parse_depot, shift_start_of
from backend.restock.lots_input import combined, lot_extras
from backend.restock.model import Plan
from backend.restock.plan import MatrixFileError, plan_shift

router = APIRouter(prefix="/restock", tags=["restock"])

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
                                description="Where the vans start and end: LAT,LON (WGS 84)",
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
                                              settings=forecast_settings),
                              lot_extras(session, settings=settings)))
    except MatrixFileError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
