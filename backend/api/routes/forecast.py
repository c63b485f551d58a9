"""A machine's stock-out forecast per slot (backend/forecast/, docs/restock.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from backend import crud
from backend.api.deps import ForecastSettingsDep, PrincipalDep, SessionDep
from backend.api.forecast_schemas import MachineForecast, SlotForecastPublic
from backend.api.problems import problem_responses
from backend.api.schemas import MachineId
from backend.forecast.store import forecast_now, outlook_of

router = APIRouter(prefix="/machines", tags=["forecast"])


def _at(now: datetime, hours: float | None) -> datetime | None:
    return None if hours is None else now + timedelta(hours=hours)


@router.get("/{machine_id}/forecast", response_model=MachineForecast,
            responses=problem_responses(404))
def get_forecast(
    machine_id: MachineId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: ForecastSettingsDep,
    horizon_hours: Annotated[float | None, Query(
        gt=0, le=672, description="Hours ahead for probability_within_horizon "
        "(default NX_FORECAST_HORIZON_H)")] = None,
) -> MachineForecast:
    """Forecast when each slot of a machine runs out, with an 80% interval."""
    machine = crud.get_machine(session=session, machine_id=machine_id, principal=principal)
    if machine is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"machine {machine_id!r} not found")
    now = forecast_now(session, settings)
    horizon = settings.horizon_h if horizon_hours is None else horizon_hours
    outlook = outlook_of(session, [machine], now=now, deadline_h={machine.id: horizon},
                         settings=settings)[machine.id]
    return MachineForecast(
        machine_id=machine.id,
        generated_at=now,
        horizon_hours=horizon,
        lookahead_hours=settings.lookahead_days * 24,
        slots=[
            SlotForecastPublic(
                slot=item.state.slot,
                product=item.state.product,
                naloxone=item.state.is_naloxone,
                count=item.state.count,
                rate_per_day=round(item.forecast.rate_per_day, 4),
                stockout_at=_at(now, item.forecast.median_h),
                stockout_mean_at=_at(now, item.forecast.mean_h),
                interval_low_at=_at(now, item.forecast.low_h),
                interval_high_at=_at(now, item.forecast.high_h),
                probability_within_horizon=min(1.0, max(
                    0.0, item.forecast.probability_by_deadline)),
            )
            for item in outlook
        ],
    )
