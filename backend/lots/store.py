"""Lots in the machines as the database holds them: expiry, heat exposure and their alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from backend.alerts.rules import AlertSpec
from backend.alerts.store import open_alert, resolve_alerts
from backend.config import Settings
from backend.lots import fefo
from backend.lots.exposure import Exposure, Limits, Reading, exposure
from backend.models import (
    Alert,
    AlertStatus,
    AlertType,
    NaloxoneLot,
    Severity,
    TemperatureReading,
    utcnow,
)


@dataclass(frozen=True)
class LotState:
    """A lot in a machine, its heat exposure since loading, and why it must be replaced."""

    lot: NaloxoneLot
    exposure: Exposure
    replace_because: tuple[str, ...]


def limits_of(settings: Settings) -> Limits:
    """Return the exposure limits the settings give."""
    return Limits(
        outside_storage=timedelta(hours=settings.heat_storage_limit_h),
        outside_excursion=timedelta(minutes=settings.heat_excursion_limit_min),
        below_freezing=timedelta(minutes=settings.heat_freezing_limit_min),
    )


def active_lots(session: Session, machine_id: str) -> list[NaloxoneLot]:
    """Return the lots with items left in a machine, by slot and first expiry."""
    return list(
        session.exec(
            select(NaloxoneLot)
            .where(col(NaloxoneLot.machine_id) == machine_id, col(NaloxoneLot.quantity) > 0)
            .order_by(col(NaloxoneLot.slot), col(NaloxoneLot.expiry), col(NaloxoneLot.id))
        ).all()
    )


def readings(session: Session, machine_id: str, start: datetime, end: datetime) -> list[Reading]:
    """Return a machine's readings in ``[start, end)``, led by the last one before ``start``."""
    table = TemperatureReading
    before = session.exec(
        select(table.at, table.celsius)
        .where(col(table.machine_id) == machine_id, col(table.at) < start)
        .order_by(col(table.at).desc())
        .limit(1)
    ).all()
    inside = session.exec(
        select(table.at, table.celsius)
        .where(col(table.machine_id) == machine_id, col(table.at) >= start,
               col(table.at) < end)
        .order_by(col(table.at))
    ).all()
    return [(at, c) for at, c in (*before, *inside)]


def _expiry_reasons(expiry: date, today: date, days: int) -> tuple[str, ...]:
    if expiry <= today:
        return ("expired",)
    if expiry <= today + timedelta(days=days):
        return ("expiring",)
    return ()


def replace_reasons(
    expiry: date, seen: Exposure, *, today: date, expiring_days: int, limits: Limits
) -> tuple[str, ...]:
    """Return why a lot must be replaced (empty: it may stay). Pure: the one rule.

    ``expired`` on or after its expiry date, ``expiring`` within
    ``expiring_days`` of it, ``heat:<range>`` for each exposure limit passed.
    """
    heat = tuple(f"heat:{name}" for name in limits.exceeded(seen))
    return _expiry_reasons(expiry, today, expiring_days) + heat


def assess(
    session: Session, machine_id: str, *, settings: Settings, now: datetime | None = None
) -> list[LotState]:
    """Return each lot in a machine with its exposure since loading and any reason to replace it."""
    now = now or utcnow()
    lots = active_lots(session, machine_id)
    if not lots:
        return []
    series = readings(session, machine_id, min(lot.loaded_at for lot in lots), now)
    hold = timedelta(seconds=settings.temperature_hold_s)
    limits = limits_of(settings)
    out = []
    for lot in lots:
        seen = exposure(series, lot.loaded_at, now, max_hold=hold)
        why = replace_reasons(lot.expiry, seen, today=now.date(),
                              expiring_days=settings.expiring_stock_days, limits=limits)
        out.append(LotState(lot, seen, why))
    return out


def lots_to_replace(
    session: Session, machine_id: str, *, settings: Settings, now: datetime | None = None
) -> list[LotState]:
    """Return the lots in a machine to replace: expired, expiring soon or heat-exposed."""
    return [s for s in assess(session, machine_id, settings=settings, now=now)
            if s.replace_because]


def lot_subject(machine_id: str, lot_id: int | None) -> str:
    """Return the alert subject naming one lot in a machine."""
    return f"{machine_id}/lot/{lot_id}"


def _describe(lot: NaloxoneLot) -> str:
    return f"lot {lot.lot_number} (slot {lot.slot}, {lot.quantity} left, expires {lot.expiry})"


def settle_lot_alerts(
    session: Session, machine_id: str, *, settings: Settings, now: datetime | None = None
) -> None:
    """Open or resolve a machine's expiring-stock (per lot) and heat-exposure alerts."""
    now = now or utcnow()
    states = assess(session, machine_id, settings=settings, now=now)
    expiring = {lot_subject(machine_id, s.lot.id): s for s in states
                if {"expired", "expiring"} & set(s.replace_because)}
    for subject, state in expiring.items():
        lot = state.lot
        open_alert(session, AlertSpec(
            AlertType.EXPIRING_STOCK,
            Severity.CRITICAL if "expired" in state.replace_because else Severity.WARNING,
            subject, machine_id, f"{machine_id}: {_describe(lot)} is "
            f"{'expired' if 'expired' in state.replace_because else 'expiring'}"),
            details={"lot_id": lot.id, "lot_number": lot.lot_number, "slot": lot.slot,
                     "expiry": lot.expiry.isoformat(), "quantity": lot.quantity}, now=now)
    open_subjects = session.exec(
        select(Alert.subject).where(
            col(Alert.machine_id) == machine_id,
            col(Alert.type) == AlertType.EXPIRING_STOCK.value,
            col(Alert.status) != AlertStatus.RESOLVED.value,
        )
    ).all()
    for subject in open_subjects:
        if subject not in expiring:
            resolve_alerts(session, AlertType.EXPIRING_STOCK, subject, now=now)
    hot = [s for s in states if any(r.startswith("heat:") for r in s.replace_because)]
    if hot:
        named = ", ".join(_describe(s.lot) for s in hot)
        message = f"{machine_id}: replace heat-exposed {named}"[:500]
        details = {"lots": [_lot_facts(s) for s in hot]}
        spec = AlertSpec(AlertType.HEAT_EXPOSURE, Severity.CRITICAL, machine_id, machine_id,
                         message)
        if not open_alert(session, spec, details=details, now=now):
            _name_current_lots(session, machine_id, message, details)
    else:
        resolve_alerts(session, AlertType.HEAT_EXPOSURE, machine_id, now=now)


def _name_current_lots(
    session: Session, machine_id: str, message: str, details: dict[str, Any]
) -> None:
    """Keep an open heat alert naming the lots to replace now (another may have got hot)."""
    alert = session.exec(select(Alert).where(
        col(Alert.type) == AlertType.HEAT_EXPOSURE.value, col(Alert.subject) == machine_id,
        col(Alert.status) != AlertStatus.RESOLVED.value)).first()
    ids = [lot["lot_id"] for lot in details["lots"]]
    if alert is not None and [lot.get("lot_id") for lot in alert.details.get("lots", [])] != ids:
        alert.message, alert.details = message, details
        session.add(alert)


def _lot_facts(state: LotState) -> dict[str, object]:
    lot, seen = state.lot, state.exposure
    return {"lot_id": lot.id, "lot_number": lot.lot_number, "slot": lot.slot,
            "quantity": lot.quantity, "because": list(state.replace_because),
            "outside_storage_h": round(seen.outside_storage.total_seconds() / 3600, 2),
            "outside_excursion_min": round(seen.outside_excursion.total_seconds() / 60, 1),
            "below_freezing_min": round(seen.below_freezing.total_seconds() / 60, 1)}


def sweep_lot_alerts(session: Session, *, settings: Settings, now: datetime) -> int:
    """Settle the lot alerts of every machine that has lots or open lot alerts; return how many."""
    with_lots = set(session.exec(
        select(NaloxoneLot.machine_id).where(col(NaloxoneLot.quantity) > 0).distinct()).all())
    with_alerts = set(session.exec(
        select(Alert.machine_id).where(
            col(Alert.type).in_([AlertType.EXPIRING_STOCK.value, AlertType.HEAT_EXPOSURE.value]),
            col(Alert.status) != AlertStatus.RESOLVED.value,
        ).distinct()).all())
    machines: Sequence[str] = sorted(m for m in with_lots | with_alerts if m is not None)
    for machine_id in machines:
        settle_lot_alerts(session, machine_id, settings=settings, now=now)
    return len(machines)


def fit_lots_to_count(
    session: Session, machine_id: str, slot: int, count: int, *, now: datetime
) -> None:
    """Trim a slot's lots first-expiry-first-out to a count set without naming lots."""
    rows = session.exec(select(NaloxoneLot).where(
        col(NaloxoneLot.machine_id) == machine_id, col(NaloxoneLot.slot) == slot,
        col(NaloxoneLot.quantity) > 0)).all()
    if not rows:
        return
    by_key = {fefo.LotKey(r.expiry, r.lot_number, r.product): r for r in rows}
    state = fefo.make(count, [(k, r.quantity) for k, r in by_key.items()])
    for key, row in by_key.items():
        left = state.quantity(key)
        if left != row.quantity:
            row.quantity = left
            row.emptied_at = now if left == 0 else None
            session.add(row)
