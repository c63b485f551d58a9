"""A machine's temperature and stock over time (the console's machine detail page)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from backend import crud
from backend.api.deps import PrincipalDep, SessionDep
from backend.api.history_schemas import (
    StockHistory,
    StockPointPublic,
    TemperatureHistory,
    TemperaturePointPublic,
)
from backend.api.problems import problem_responses
from backend.api.schemas import MachineId
from backend.lots.exposure import STORAGE_RANGE
from backend.machine_history import stock_history, temperature_history
from backend.models.types import utcnow

router = APIRouter(prefix="/machines", tags=["machines"])

Hours = Annotated[int, Query(ge=1, le=2160, description="How far back, up to 90 days")]
Days = Annotated[int, Query(ge=1, le=90, description="How far back")]


def _visible(session: SessionDep, machine_id: str, principal: PrincipalDep) -> None:
    if crud.get_machine(session=session, machine_id=machine_id, principal=principal) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"machine {machine_id!r} not found")


@router.get("/{machine_id}/temperatures", response_model=TemperatureHistory,
            responses=problem_responses(404))
def get_temperatures(
    machine_id: MachineId, session: SessionDep, principal: PrincipalDep, hours: Hours = 168,
) -> TemperatureHistory:
    """Return the machine's temperature over the last ``hours``, averaged when readings are many."""
    _visible(session, machine_id, principal)
    hi = utcnow()
    lo = hi - dt.timedelta(hours=hours)
    points = temperature_history(session, machine_id, lo=lo, hi=hi)
    return TemperatureHistory(
        machine_id=machine_id, from_=lo, to=hi,
        safe_min_c=STORAGE_RANGE[0], safe_max_c=STORAGE_RANGE[1],
        data=[TemperaturePointPublic(at=p.at, celsius=p.celsius, low=p.low, high=p.high,
                                     readings=p.readings) for p in points],
        count=len(points),
    )


@router.get("/{machine_id}/stock-history", response_model=StockHistory,
            responses=problem_responses(404))
def get_stock_history(
    machine_id: MachineId, session: SessionDep, principal: PrincipalDep, days: Days = 14,
) -> StockHistory:
    """Return each slot's count over the last ``days`` as steps (restocks set, vends take one)."""
    _visible(session, machine_id, principal)
    hi = utcnow()
    lo = hi - dt.timedelta(days=days)
    points = stock_history(session, machine_id, lo=lo, hi=hi)
    return StockHistory(
        machine_id=machine_id, from_=lo, to=hi,
        data=[StockPointPublic(at=p.at, slot=p.slot, count=p.count) for p in points],
        count=len(points),
    )
