"""Record a restock visit: counts found, stock removed, lots loaded, counts after; once per key.

Each slot is settled in this order: the count found (a difference from the
books is a discrepancy, and the found count becomes the books), then the
removals, then the loads, then the count after (when given, it is what the
slot holds). Lots are kept first-expiry-first-out (backend/lots/fefo.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from backend.alerts.rules import settle_slot_alerts
from backend.alerts.store import open_alert, resolve_alerts
from backend.api.lot_schemas import VisitCreate, VisitSlot
from backend.audit import record_audit
from backend.auth.principal import Principal
from backend.config import Settings
from backend.crud import NotFoundError, get_machine
from backend.lots import fefo
from backend.lots.fefo import LotKey
from backend.lots.store import settle_lot_alerts
from backend.models import Alert, AlertStatus, NaloxoneLot, Product, RestockVisit, Slot, utcnow
from backend.models import StockDiscrepancy as Discrepancy
from backend.stock import StockSource, effective_low_threshold, reconcile, restock


class VisitError(ValueError):
    """A visit that cannot be applied as sent (over capacity, unknown lot or product)."""


class IdempotencyConflictError(ValueError):
    """The same Idempotency-Key came with a different body."""


@dataclass(frozen=True)
class Recorded:
    """A recorded visit and whether this call replayed an earlier one."""

    visit: RestockVisit
    replayed: bool


def digest(body: VisitCreate) -> str:
    """Return the SHA-256 of a visit body in canonical JSON."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_replay(session: Session, *, by: str, key: str, body: VisitCreate) -> RestockVisit | None:
    """Return the visit already recorded under ``key`` by ``by`` (refusing another body)."""
    found = session.exec(
        select(RestockVisit).where(
            col(RestockVisit.visited_by) == by, col(RestockVisit.idempotency_key) == key
        )
    ).first()
    if found is not None and found.request_digest != digest(body):
        raise IdempotencyConflictError(
            "this Idempotency-Key was used for a different visit; use a new key")
    return found


def _open_alert_ids(session: Session, machine_id: str) -> set[int | None]:
    return set(session.exec(select(Alert.id).where(
        col(Alert.machine_id) == machine_id, col(Alert.status) != AlertStatus.RESOLVED.value
    )).all())


def _settle_slot(session: Session, slot: Slot, default_threshold: int) -> None:
    settled = settle_slot_alerts(
        machine_id=slot.machine_id, slot=slot.slot, product=slot.product, count=slot.count,
        threshold=effective_low_threshold(slot.low_threshold, default_threshold))
    for spec in settled.open:
        open_alert(session, spec, details=dict(settled.details))
    for kind in settled.resolve:
        resolve_alerts(session, kind, settled.subject)


def _apply_slot(
    session: Session, slot: Slot, req: VisitSlot, *, visit_id: int | None, now: datetime,
    by: str, discrepancies: list[dict[str, int]],
) -> None:
    rows = session.exec(select(NaloxoneLot).where(
        col(NaloxoneLot.machine_id) == slot.machine_id, col(NaloxoneLot.slot) == slot.slot,
        col(NaloxoneLot.quantity) > 0)).all()
    by_key = {LotKey(r.expiry, r.lot_number, r.product): r for r in rows}
    state = fefo.make(slot.count, [(k, r.quantity) for k, r in by_key.items()])
    where = f"slot {slot.slot}"
    if req.found is not None:
        check = reconcile(state.count, req.found, StockSource.VISIT)
        if check.discrepancy is not None:
            discrepancies.append({"slot": slot.slot, "expected": check.discrepancy.expected,
                                  "observed": check.discrepancy.observed})
            session.add(Discrepancy(
                machine_id=slot.machine_id, slot=slot.slot, source=StockSource.VISIT.value,
                expected=check.discrepancy.expected, observed=check.discrepancy.observed,
                detected_at=now, details={"visited_by": by}))
        state, _ = fefo.set_count(state, req.found)
    for out in req.removed:
        key = None
        if out.lot_number is not None:
            named = [k for k in by_key if k.lot_number == out.lot_number and state.quantity(k)]
            if not named:
                raise VisitError(f"{where}: no lot {out.lot_number!r} in this slot to remove")
            key = named[0]
        try:
            state = fefo.remove(state, key, out.quantity)
        except fefo.LotError as exc:
            raise VisitError(f"{where}: {exc}") from None
    for lot in req.loaded:
        if session.get(Product, lot.product) is None:
            raise VisitError(f"{where}: unknown product {lot.product!r}")
        state = fefo.load(state, LotKey(lot.expiry, lot.lot_number, lot.product), lot.quantity)
    if req.count_after is not None:
        state, _ = fefo.set_count(state, req.count_after)
    if 0 < slot.capacity < state.count:
        raise VisitError(f"{where} holds at most {slot.capacity}, not {state.count}")
    slot.count = restock(slot.count, state.count, StockSource.VISIT).after
    slot.updated_at = now
    kept = dict(state.lots)
    for key, row in by_key.items():
        row.quantity = kept.pop(key, 0)
        if row.quantity == 0:
            row.emptied_at = now
    for key, qty in kept.items():
        session.add(NaloxoneLot(
            product=key.product, lot_number=key.lot_number, expiry=key.expiry,
            machine_id=slot.machine_id, slot=slot.slot, quantity=qty, loaded_at=now,
            visit_id=visit_id))


def record_visit(
    *,
    session: Session,
    body: VisitCreate,
    by: str,
    settings: Settings,
    idempotency_key: str | None = None,
    principal: Principal | None = None,
    request_id: str | None = None,
) -> Recorded:
    """Record ``body`` as ``by``'s visit, settle its alerts, audit it, then commit.

    With ``idempotency_key``, a visit already recorded under it by ``by`` is
    returned instead (IdempotencyConflictError if its body differed).
    """
    if idempotency_key is not None:
        found = find_replay(session, by=by, key=idempotency_key, body=body)
        if found is not None:
            return Recorded(found, replayed=True)
    machine_id = body.machine_id
    if get_machine(session=session, machine_id=machine_id, principal=principal) is None:
        raise NotFoundError(f"machine {machine_id!r} is not registered")
    numbers = [s.slot for s in body.slots]
    if len(set(numbers)) != len(numbers):
        raise VisitError("each slot may appear once in a visit")
    now = utcnow()
    open_before = _open_alert_ids(session, machine_id)
    visit = RestockVisit(machine_id=machine_id, visited_at=now, visited_by=by,
                         idempotency_key=idempotency_key, request_digest=digest(body))
    session.add(visit)
    session.flush()
    before: dict[str, int] = {}
    discrepancies: list[dict[str, int]] = []
    for req in sorted(body.slots, key=lambda s: s.slot):
        slot = session.get(Slot, (machine_id, req.slot))
        if slot is None:
            raise NotFoundError(f"machine {machine_id!r} has no slot {req.slot}")
        before[str(req.slot)] = slot.count
        _apply_slot(session, slot, req, visit_id=visit.id, now=now, by=by,
                    discrepancies=discrepancies)
        session.flush()
        _settle_slot(session, slot, settings.default_low_threshold)
    session.flush()
    settle_lot_alerts(session, machine_id, settings=settings, now=now)
    session.flush()
    resolved = len(open_before - _open_alert_ids(session, machine_id))
    visit.counts = {str(s.slot): _count(session, machine_id, s.slot) for s in body.slots}
    details: dict[str, Any] = {
        "slots": [s.model_dump(mode="json") for s in body.slots],
        "discrepancies": discrepancies,
        "resolved_alerts": resolved,
    }
    visit.details = details
    record_audit(session, actor=by, action="visit.record", object_type="machine",
                 object_id=machine_id, before={"counts": before},
                 after={"visit_id": visit.id, "counts": visit.counts, **details},
                 request_id=request_id)
    session.commit()
    session.refresh(visit)
    return Recorded(visit, replayed=False)


def _count(session: Session, machine_id: str, number: int) -> int:
    slot = session.get(Slot, (machine_id, number))
    return 0 if slot is None else slot.count
