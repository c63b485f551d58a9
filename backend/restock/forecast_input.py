"""The forecast's part of the planner's input: naloxone slots that run out before the next visit.

A slot is critical when the chance that it runs out before the machine's next
visit after this shift is at least the predicted_stockout alert's opening
chance (``NX_FORECAST_OPEN_PROBABILITY``), so plan and alert agree. That next
visit is the machine's next planned visit after the shift (an issued plan's
stop, ``backend.restock.schedule``), else the next shift, taken to start
``NX_FORECAST_HORIZON_H`` (24) hours after this one. A slot forecast to run out
during the shift also gets a due time (the forecast's 10% quantile): the
routing tries to reach it before then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from backend.forecast.outlook import SlotOutlook
from backend.forecast.settings import ForecastSettings
from backend.forecast.store import forecast_now, outlook_of
from backend.models import Machine
from backend.restock.plan import SlotExtra
from backend.restock.schedule import next_planned_visits


def extras_from_outlooks(
    outlooks: Mapping[str, Sequence[SlotOutlook]], *, now: datetime, shift_end: datetime,
    open_probability: float,
) -> dict[tuple[str, int], SlotExtra]:
    """Flag, per naloxone slot, whether it is critical and by when it should be reached.

    Pure: each outlook was forecast up to its machine's next visit after the shift.
    """
    out: dict[tuple[str, int], SlotExtra] = {}
    for machine_id, slots in outlooks.items():
        for item in slots:
            if not item.state.is_naloxone:
                continue
            f = item.forecast
            critical = f.probability_by_deadline >= open_probability
            due = None if f.low_h is None else now + timedelta(hours=f.low_h)
            if due is not None and due >= shift_end:
                due = None  # not during this shift: no reason to hurry
            if critical or due is not None:
                out[(machine_id, item.state.slot)] = SlotExtra(
                    stockout_before_next_shift=critical, due=due)
    return out


def next_visit_deadlines(
    machine_ids: Sequence[str], planned: Mapping[str, datetime], *, now: datetime,
    fallback: datetime,
) -> dict[str, float]:
    """Return, per machine, hours from ``now`` to its next visit (planned, else ``fallback``)."""
    return {m: max(0.0, (planned.get(m, fallback) - now) / timedelta(hours=1))
            for m in machine_ids}


def forecast_extras(
    session: Session, *, shift_start: datetime, settings: ForecastSettings,
    shift_hours: float = 8.0, now: datetime | None = None,
) -> dict[tuple[str, int], SlotExtra]:
    """Flag the naloxone slots likely to run out before their machine's next visit."""
    now = now or forecast_now(session, settings)
    shift_end = shift_start + timedelta(hours=shift_hours)
    fallback = max(now, shift_start) + timedelta(hours=settings.horizon_h)
    machines = list(session.exec(select(Machine).where(col(Machine.active))).all())
    # Stops of this very shift are being re-planned: only later ones count.
    planned = next_planned_visits(session, after=max(now, shift_end))
    deadlines = next_visit_deadlines([m.id for m in machines], planned, now=now,
                                     fallback=fallback)
    outlooks = outlook_of(session, machines, now=now, deadline_h=deadlines, settings=settings)
    return extras_from_outlooks(outlooks, now=now, shift_end=shift_end,
                                open_probability=settings.open_probability)
