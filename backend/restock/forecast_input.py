"""The forecast's part of the planner's input: naloxone slots that run out before the next shift."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from backend.forecast.settings import ForecastSettings
from backend.forecast.store import forecast_now, stockout_chances
from backend.restock.plan import SlotExtra


def forecast_extras(
    session: Session, *, shift_start: datetime, settings: ForecastSettings,
    now: datetime | None = None,
) -> dict[tuple[str, int], SlotExtra]:
    """Flag the slots likely to run out before the next shift.

    The next shift is taken to start ``NX_FORECAST_HORIZON_H`` (24) hours after
    this one; "likely" is the predicted_stockout alert's opening chance
    (``NX_FORECAST_OPEN_PROBABILITY``), so plan and alert agree.
    """
    now = now or forecast_now(session, settings)
    until = max(now, shift_start) + timedelta(hours=settings.horizon_h)
    chances = stockout_chances(session, now=now, until=until, settings=settings)
    return {key: SlotExtra(stockout_before_next_shift=True)
            for key, chance in chances.items() if chance >= settings.open_probability}
