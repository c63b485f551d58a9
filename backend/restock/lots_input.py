"""The lots module's part of the planner's input: doses to replace per slot, with lot numbers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time

from sqlmodel import Session, col, select

from backend.config import Settings
from backend.lots.store import lots_to_replace
from backend.models import NaloxoneLot, utcnow
from backend.restock.plan import NO_EXTRA, SlotExtra


def lot_extras(
    session: Session, *, settings: Settings, now: datetime | None = None
) -> dict[tuple[str, int], SlotExtra]:
    """Return, per (machine, slot), the doses of expired, expiring or heat-exposed lots in it."""
    now = now or utcnow()
    # Only machines that hold lots are assessed (one exposure read each).
    holding = session.exec(
        select(NaloxoneLot.machine_id)
        .where(col(NaloxoneLot.quantity) > 0, col(NaloxoneLot.machine_id).is_not(None))
        .distinct()
    ).all()
    out: dict[tuple[str, int], SlotExtra] = {}
    for machine_id in sorted(m for m in holding if m is not None):
        for state in lots_to_replace(session, machine_id, settings=settings, now=now):
            lot = state.lot
            if lot.slot is None:
                continue
            key = (machine_id, lot.slot)
            before = out.get(key, NO_EXTRA)
            out[key] = SlotExtra(replace=before.replace + lot.quantity,
                                 replace_lots=(*before.replace_lots, lot.lot_number),
                                 replace_by=_earliest(before.replace_by, replace_by(
                                     state.replace_because, lot.expiry, now)))
    return out


def replace_by(reasons: tuple[str, ...], expiry: date, now: datetime) -> datetime:
    """Return when a lot must be out: at its expiry if it is only expiring, else now."""
    if set(reasons) == {"expiring"}:
        return max(now, datetime.combine(expiry, time(), tzinfo=UTC))
    return now


def combined(*parts: Mapping[tuple[str, int], SlotExtra]) -> dict[tuple[str, int], SlotExtra]:
    """Merge what the forecast and the lots module say about each slot."""
    out: dict[tuple[str, int], SlotExtra] = {}
    for part in parts:
        for key, extra in part.items():
            before = out.get(key, NO_EXTRA)
            out[key] = SlotExtra(
                stockout_before_next_shift=(before.stockout_before_next_shift
                                            or extra.stockout_before_next_shift),
                replace=before.replace + extra.replace,
                replace_lots=(*before.replace_lots, *extra.replace_lots),
                replace_by=_earliest(before.replace_by, extra.replace_by),
                due=_earliest(before.due, extra.due))
    return out


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)
