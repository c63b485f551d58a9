"""One machine's forecast from its slots and dispense history: pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from backend.forecast.model import (
    DEFAULT_PARAMS,
    StockoutForecast,
    epoch_hours,
    fit_rate,
    fit_shape,
    forecast_stockout,
)
from backend.forecast.params import ModelParams


@dataclass(frozen=True)
class SlotState:
    """A slot as the books have it now."""

    slot: int
    product: str | None
    count: int
    is_naloxone: bool


@dataclass(frozen=True)
class SlotOutlook:
    """A slot with its stock-out forecast."""

    state: SlotState
    forecast: StockoutForecast


def machine_outlook(
    slots: Sequence[SlotState],
    dispenses: Sequence[tuple[int, datetime]],
    *,
    now: datetime,
    since: datetime,
    deadline_h: float,
    params: ModelParams = DEFAULT_PARAMS,
    empty: Mapping[int, Sequence[tuple[datetime, datetime]]] | None = None,
) -> list[SlotOutlook]:
    """Forecast every slot of one machine from its (slot, time) dispenses.

    The hour-of-week shape is the machine's, from the dispenses of all its
    slots (one visitor's choice of slot does not change when people come);
    each slot's rate is its own. ``empty`` holds, per slot, the stretches it
    stood empty, which are no exposure for its rate.
    """
    now_h, since_h = epoch_hours(now), epoch_hours(since)
    all_hours = np.array([epoch_hours(t) for _, t in dispenses], dtype=float)
    slot_of = np.array([s for s, _ in dispenses], dtype=np.int64)
    shape = fit_shape(all_hours, max(since_h, now_h - params.history_hours), now_h, params)
    out = []
    for state in sorted(slots, key=lambda s: s.slot):
        mine = all_hours[slot_of == state.slot] if all_hours.size else all_hours
        gaps = [(epoch_hours(a), epoch_hours(b)) for a, b in (empty or {}).get(state.slot, ())]
        posterior = fit_rate(mine, now_h=now_h, since_h=since_h, shape=shape, params=params,
                             unavailable=gaps)
        out.append(SlotOutlook(state, forecast_stockout(
            posterior, stock=state.count, now_h=now_h, shape=shape, deadline_h=deadline_h,
            params=params)))
    return out
