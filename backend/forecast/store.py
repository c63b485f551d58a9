"""The forecast's database side: read slots and dispenses, run the alert tick, schedule it."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, func, select

from backend.alerts.rules import slot_subject
from backend.alerts.store import SYSTEM_ACTOR, open_alert, resolve
from backend.db import session_scope
from backend.forecast.alerting import Decision, decide, predicted_stockout_spec
from backend.forecast.outlook import SlotOutlook, SlotState, machine_outlook
from backend.forecast.settings import ForecastSettings
from backend.models import (
    Alert,
    AlertStatus,
    AlertType,
    DispenseEvent,
    Machine,
    Product,
    RestockVisit,
    Slot,
    utcnow,
)
from backend.restock.schedule import next_planned_visits

log = logging.getLogger(__name__)


def load_slots(session: Session, machine_ids: Sequence[str]) -> dict[str, list[SlotState]]:
    """Return each machine's slots with whether they hold naloxone."""
    rows = session.exec(
        select(Slot, Product.is_naloxone)
        .join(Product, col(Product.code) == col(Slot.product), isouter=True)
        .where(col(Slot.machine_id).in_(machine_ids))
    ).all()
    out: dict[str, list[SlotState]] = defaultdict(list)
    for slot, naloxone in rows:
        out[slot.machine_id].append(
            SlotState(slot.slot, slot.product, slot.count, bool(naloxone)))
    return out


def load_dispenses(
    session: Session, machine_ids: Sequence[str], since: datetime
) -> dict[str, list[tuple[int, datetime]]]:
    """Return each machine's successful dispenses (slot, device time) since ``since``."""
    rows = session.exec(
        select(DispenseEvent.machine_id, DispenseEvent.slot, DispenseEvent.device_time)
        .where(col(DispenseEvent.machine_id).in_(machine_ids),
               DispenseEvent.result == "ok",
               col(DispenseEvent.device_time) >= since)
    ).all()
    out: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
    for machine_id, slot, when in rows:
        out[machine_id].append((slot, when))
    return out


def load_empty_stretches(
    session: Session, machine_ids: Sequence[str], *, since: datetime, now: datetime
) -> dict[str, dict[int, list[tuple[datetime, datetime]]]]:
    """Return, per machine and slot, when its empty_slot alerts were open since ``since``."""
    rows = session.exec(
        select(Alert.machine_id, Alert.subject, Alert.opened_at, Alert.resolved_at)
        .where(Alert.type == AlertType.EMPTY_SLOT.value,
               col(Alert.machine_id).in_(machine_ids),
               col(Alert.opened_at) < now,
               or_(col(Alert.resolved_at).is_(None), col(Alert.resolved_at) > since))
    ).all()
    out: dict[str, dict[int, list[tuple[datetime, datetime]]]] = defaultdict(
        lambda: defaultdict(list))
    for machine_id, subject, opened, resolved in rows:
        number = subject.rsplit("/", 1)[-1]
        if machine_id is None or not number.isdigit():
            continue
        out[machine_id][int(number)].append((opened, resolved or now))
    return out


def forecast_now(session: Session, settings: ForecastSettings) -> datetime:
    """Return the moment forecasts start from: the wall clock, or the newest dispense."""
    if settings.clock == "data":
        newest = session.exec(
            select(func.max(DispenseEvent.device_time)).where(DispenseEvent.result == "ok")
        ).one()
        if isinstance(newest, str):  # SQLite's max() hands back the stored text
            newest = datetime.fromisoformat(newest)
        if newest is not None:
            return newest if newest.tzinfo else newest.replace(tzinfo=UTC)
    return utcnow()


def outlook_of(
    session: Session, machines: Sequence[Machine], *, now: datetime,
    deadline_h: Mapping[str, float], settings: ForecastSettings,
) -> dict[str, list[SlotOutlook]]:
    """Forecast every slot of ``machines``, each up to its own deadline (hours from now)."""
    params = settings.params()
    ids = [m.id for m in machines]
    if not ids:
        return {}
    slots = load_slots(session, ids)
    window = now - timedelta(hours=params.history_hours)
    dispenses = load_dispenses(session, ids, window)
    empty = load_empty_stretches(session, ids, since=window, now=now)
    # A machine registered after its first dispense (a fleet replayed into a new
    # database) has been seen since that dispense.
    since = {m.id: min([m.created_at, *(t for _, t in dispenses[m.id])]) for m in machines}
    return {
        m.id: machine_outlook(
            slots[m.id], dispenses[m.id], now=now, since=since[m.id],
            deadline_h=deadline_h[m.id], params=params, empty=empty[m.id])
        for m in machines
    }


def stockout_chances(
    session: Session, *, now: datetime, until: datetime, settings: ForecastSettings,
) -> dict[tuple[str, int], float]:
    """Return, per (machine, slot) holding naloxone, the chance it runs out before ``until``."""
    machines = list(session.exec(select(Machine).where(col(Machine.active))).all())
    hours = max(0.0, (until - now) / timedelta(hours=1))
    outlooks = outlook_of(session, machines, now=now, deadline_h={m.id: hours for m in machines},
                          settings=settings)
    return {
        (machine_id, item.state.slot): item.forecast.probability_by_deadline
        for machine_id, slots in outlooks.items()
        for item in slots
        if item.state.is_naloxone
    }


@dataclass(frozen=True)
class TickReport:
    """What one run of the forecast job did."""

    slots: int
    opened: int
    resolved: int


def run_forecast_tick(
    engine: Engine,
    settings: ForecastSettings,
    *,
    now: datetime | None = None,
    next_visits: Mapping[str, datetime] | None = None,
) -> TickReport:
    """Forecast every naloxone slot of the active fleet and settle predicted_stockout alerts.

    A slot's deadline is its machine's next planned visit, else the horizon
    setting. The planned visits are the issued plans' stops
    (``backend.restock.schedule``) unless ``next_visits`` gives them. One
    transaction.
    """
    thresholds = settings.thresholds()
    opened = resolved = considered = 0
    with session_scope(engine) as session:
        now = now or forecast_now(session, settings)
        visits = (next_planned_visits(session, after=now) if next_visits is None
                  else next_visits)
        machines = list(session.exec(select(Machine).where(col(Machine.active))).all())
        deadline_h = {
            m.id: (max(0.0, (visits[m.id] - now) / timedelta(hours=1)) if m.id in visits
                   else settings.horizon_h)
            for m in machines
        }
        outlooks = outlook_of(session, machines, now=now, deadline_h=deadline_h,
                              settings=settings)
        active = {
            a.subject: a for a in session.exec(
                select(Alert).where(Alert.type == AlertType.PREDICTED_STOCKOUT.value,
                                    Alert.status != AlertStatus.RESOLVED.value)).all()
        }
        last_visit = dict(session.exec(
            select(RestockVisit.machine_id, RestockVisit.visited_at)
            .order_by(col(RestockVisit.visited_at))).all()) if active else {}
        for machine_id, slots in outlooks.items():
            for item in slots:
                if not item.state.is_naloxone:
                    continue
                considered += 1
                subject = slot_subject(machine_id, item.state.slot)
                alert = active.pop(subject, None)
                visited = (alert is not None and machine_id in last_visit
                           and last_visit[machine_id] > alert.opened_at)
                f = item.forecast
                decision, reason = decide(
                    active=alert is not None, probability=f.probability_by_deadline,
                    count=item.state.count, visited_since_open=visited, thresholds=thresholds)
                deadline = now + timedelta(hours=f.deadline_h)
                details = {
                    "probability": round(f.probability_by_deadline, 4),
                    "deadline": deadline.isoformat(),
                    "count": item.state.count,
                    "median_hours": None if f.median_h is None else round(f.median_h, 2),
                    "interval_hours": [None if h is None else round(h, 2)
                                       for h in (f.low_h, f.high_h)],
                    "rate_per_day": round(f.rate_per_day, 3),
                }
                if decision is Decision.OPEN:
                    spec = predicted_stockout_spec(
                        machine_id, item.state.slot, item.state.product,
                        f.probability_by_deadline, deadline.strftime("%Y-%m-%d %H:%M UTC"))
                    opened += open_alert(session, spec, details=details, now=now)
                elif decision is Decision.RESOLVE and alert is not None:
                    alert.details = {**alert.details, "resolved_because": str(reason),
                                     "last": details}
                    resolved += resolve(session, alert, by=SYSTEM_ACTOR, now=now)
        # Alerts whose slot is gone, no longer naloxone, or whose machine is inactive.
        for alert in active.values():
            alert.details = {**alert.details, "resolved_because": "no_longer_forecast"}
            resolved += resolve(session, alert, by=SYSTEM_ACTOR, now=now)
    return TickReport(slots=considered, opened=opened, resolved=resolved)
