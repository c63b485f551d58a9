"""Keyword-only functions that read and change the database for the API and the CLI."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, delete, func, select

from backend.alerts import store as alert_store
from backend.alerts.rules import settle_slot_alerts
from backend.alerts.store import open_alert, resolve_alerts
from backend.areas.store import locate
from backend.audit import record_audit, snapshot
from backend.auth.principal import Principal
from backend.auth.scope import alert_filter, sees_alert, sees_machine_area
from backend.lots.store import fit_lots_to_count
from backend.models import (
    Alert,
    AlertStatus,
    DispenseEvent,
    Machine,
    MachineEvent,
    MachineListingUpdate,
    MachineUpdate,
    RestockVisit,
    Slot,
    StockDiscrepancy,
    utcnow,
)
from backend.stock import (
    DEFAULT_LOW_THRESHOLD,
    OverCapacityError,
    StockSource,
    effective_low_threshold,
    reconcile,
    restock,
)
from firmware_agent.wire.topics import validate_machine_id

log = logging.getLogger(__name__)

SLOT_FIELDS = ("product", "capacity", "count", "par", "low_threshold")
MACHINE_FIELDS = ("name", "lat", "lon", "site", "area", "active")
LISTING_FIELDS = ("public_name", "public_id", "opening_hours", "in_service")
ALERT_FIELDS = ("status", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by")


class NotFoundError(LookupError):
    """The thing asked for does not exist."""


class InvalidTransitionError(ValueError):
    """The change asked for does not apply to the thing's current state."""


def _settle_slot_alerts(session: Session, slot: Slot, default_threshold: int) -> None:
    settled = settle_slot_alerts(
        machine_id=slot.machine_id,
        slot=slot.slot,
        product=slot.product,
        count=slot.count,
        threshold=effective_low_threshold(slot.low_threshold, default_threshold),
    )
    for spec in settled.open:
        open_alert(session, spec, details=dict(settled.details))
    for kind in settled.resolve:
        resolve_alerts(session, kind, settled.subject)


def _machine_state(session: Session, machine: Machine) -> dict[str, Any]:
    """Return a machine's fields and its planogram (slots), as the audit trail keeps them."""
    slots = slots_of(session=session, machine_ids=[machine.id]).get(machine.id, [])
    return {**snapshot(machine, MACHINE_FIELDS),
            "slots": {str(s.slot): snapshot(s, SLOT_FIELDS) for s in slots}}


def register_machine(
    *,
    session: Session,
    machine_id: str,
    name: str,
    lat: float,
    lon: float,
    actor: str,
    site: str | None = None,
    slots: Sequence[dict[str, Any]] | None = None,
    default_low_threshold: int = DEFAULT_LOW_THRESHOLD,
    area: str | None = None,
    request_id: str | None = None,
    commit: bool = True,
) -> Machine:
    """Create or update a machine and its slots (idempotent), audit it, then commit.

    ``area`` names the area tokens can be limited to; None keeps the current one.
    Once named areas are loaded (``nx-backend areas load``) the polygon
    containing the machine decides instead, and a machine in none has no area.
    With ``commit=False`` the change is only flushed, for a caller that changes
    more (a broker credential) in the same transaction.
    """
    validate_machine_id(machine_id)
    machine = session.get(Machine, machine_id)
    before = None if machine is None else _machine_state(session, machine)
    if machine is None:
        machine = Machine(id=machine_id, name=name, lat=lat, lon=lon, site=site, area=area)
        session.add(machine)
    else:
        machine.name, machine.lat, machine.lon, machine.site = name, lat, lon, site
        machine.area = area if area is not None else machine.area
        machine.active = True
    # With named areas loaded, the polygon around the machine decides its area.
    machine.area = locate(session, lat, lon, machine.area)
    Machine.model_validate(machine.model_dump())  # range checks on lat/lon
    session.flush()
    for spec in slots or ():
        number = int(spec["slot"])
        slot = session.get(Slot, (machine_id, number))
        if slot is None:
            slot = Slot(machine_id=machine_id, slot=number, low_threshold=default_low_threshold)
            session.add(slot)
        for field in SLOT_FIELDS:
            if field in spec and spec[field] is not None:
                setattr(slot, field, spec[field])
        if slot.par is None:
            slot.par = slot.capacity
        if slot.count < 0 or slot.capacity < 0:
            raise ValueError(f"slot {number}: counts cannot be negative")
        slot.updated_at = utcnow()
        session.flush()
        _settle_slot_alerts(session, slot, default_low_threshold)
    after = _machine_state(session, machine)
    if after != before:
        record_audit(session, actor=actor, action="machine.register", object_type="machine",
                     object_id=machine_id, before=before, after=after, request_id=request_id)
    if not commit:
        session.flush()
        return machine
    session.commit()
    session.refresh(machine)
    log.info("machine %s registered", machine_id)
    return machine


def deactivate_machine(
    *,
    session: Session,
    machine_id: str,
    actor: str,
    request_id: str | None = None,
    commit: bool = True,
) -> Machine:
    """Stop accepting a machine's messages but keep its history; resolve its alerts.

    With ``commit=False`` the change is only flushed (see ``register_machine``).
    """
    machine = session.get(Machine, machine_id)
    if machine is None:
        raise NotFoundError(f"machine {machine_id!r} is not registered")
    record_audit(session, actor=actor, action="machine.deactivate", object_type="machine",
                 object_id=machine_id, before={"active": machine.active},
                 after={"active": False}, request_id=request_id)
    machine.active = False
    _resolve_machine_alerts(session, machine_id, by="deactivated")
    if not commit:
        session.flush()
        return machine
    session.commit()
    session.refresh(machine)
    return machine


def remove_machine(
    *, session: Session, machine_id: str, actor: str, request_id: str | None = None
) -> bool:
    """Delete a machine and its slots (events stay, as history); say whether it existed."""
    machine = session.get(Machine, machine_id)
    if machine is None:
        return False
    record_audit(session, actor=actor, action="machine.remove", object_type="machine",
                 object_id=machine_id, before=_machine_state(session, machine),
                 request_id=request_id)
    _resolve_machine_alerts(session, machine_id, by="removed")
    session.exec(delete(Slot).where(col(Slot.machine_id) == machine_id))
    session.delete(machine)
    session.commit()
    return True


def _resolve_machine_alerts(session: Session, machine_id: str, *, by: str) -> None:
    active = session.exec(
        select(Alert).where(
            col(Alert.machine_id) == machine_id, col(Alert.status) != AlertStatus.RESOLVED
        )
    ).all()
    now = utcnow()
    for alert in active:
        alert_store.resolve(session, alert, by=by, now=now)


PUBLIC_ID_BYTES = 12
"""96 random bits: unguessable, and 16 URL-safe characters in the feed."""


def update_public_listing(
    *,
    session: Session,
    machine_id: str,
    changes: MachineListingUpdate,
    actor: str,
    request_id: str | None = None,
    principal: Principal | None = None,
) -> Machine:
    """Change what the public feed shows of a machine, audit it, then commit.

    The first time a machine gets a public name it also gets its random public
    id, which later changes (even unlisting and listing again) keep. A machine
    outside ``principal``'s areas is not found.
    """
    machine = get_machine(session=session, machine_id=machine_id, principal=principal)
    if machine is None:
        raise NotFoundError(f"machine {machine_id!r} is not registered")
    fields = changes.model_dump(exclude_unset=True)
    if "in_service" in fields and fields["in_service"] is None:
        raise ValueError("in_service must be true or false")
    before = snapshot(machine, LISTING_FIELDS)
    for field, value in fields.items():
        setattr(machine, field, value)
    if machine.public_name is not None and machine.public_id is None:
        machine.public_id = secrets.token_urlsafe(PUBLIC_ID_BYTES)
    after = snapshot(machine, LISTING_FIELDS)
    if after != before:
        record_audit(session, actor=actor, action="machine.public_listing", object_type="machine",
                     object_id=machine_id, before=before, after=after, request_id=request_id)
    session.commit()
    session.refresh(machine)
    log.info("machine %s public listing changed: %s", machine_id, ", ".join(sorted(fields)))
    return machine


PLACE_FIELDS = ("name", "site", "lat", "lon", "area")


def update_machine(
    *,
    session: Session,
    machine_id: str,
    changes: MachineUpdate,
    actor: str,
    request_id: str | None = None,
    principal: Principal | None = None,
) -> Machine:
    """Change a machine's name, site or place (fields sent only), audit it, then commit.

    A move re-decides its named area, as registration does. A machine outside
    ``principal``'s areas is not found; clearing the name or a coordinate is a ValueError.
    """
    machine = get_machine(session=session, machine_id=machine_id, principal=principal)
    if machine is None:
        raise NotFoundError(f"machine {machine_id!r} is not registered")
    fields = changes.model_dump(exclude_unset=True)
    cleared = sorted(f for f in ("name", "lat", "lon") if f in fields and fields[f] is None)
    if cleared:
        raise ValueError(f"{', '.join(cleared)} cannot be cleared")
    before = snapshot(machine, PLACE_FIELDS)
    for field, value in fields.items():
        setattr(machine, field, value)
    if "lat" in fields or "lon" in fields:
        machine.area = locate(session, machine.lat, machine.lon, machine.area)
    after = snapshot(machine, PLACE_FIELDS)
    if after != before:
        record_audit(session, actor=actor, action="machine.update", object_type="machine",
                     object_id=machine_id, before=before, after=after, request_id=request_id)
    session.commit()
    session.refresh(machine)
    log.info("machine %s changed: %s", machine_id, ", ".join(sorted(fields)) or "(nothing)")
    return machine


def set_machine_tags(
    *,
    session: Session,
    machine_id: str,
    tags: Sequence[str],
    actor: str,
    request_id: str | None = None,
    principal: Principal | None = None,
) -> Machine:
    """Replace a machine's tags (kept sorted, without repeats), audit it, then commit.

    A machine outside ``principal``'s areas is not found.
    """
    machine = get_machine(session=session, machine_id=machine_id, principal=principal)
    if machine is None:
        raise NotFoundError(f"machine {machine_id!r} is not registered")
    before = list(machine.tags)
    machine.tags = sorted(set(tags))
    if machine.tags != before:
        record_audit(session, actor=actor, action="machine.tags", object_type="machine",
                     object_id=machine_id, before={"tags": before},
                     after={"tags": machine.tags}, request_id=request_id)
    session.commit()
    session.refresh(machine)
    log.info("machine %s tags: %s", machine_id, ", ".join(machine.tags) or "(none)")
    return machine


def get_machine(
    *, session: Session, machine_id: str, principal: Principal | None = None
) -> Machine | None:
    """Return a machine by id (None also when ``principal`` may not see it)."""
    machine = session.get(Machine, machine_id)
    if machine is None or (principal and not sees_machine_area(principal, machine.area)):
        return None
    return machine


def list_machines(
    *, session: Session, limit: int = 100, offset: int = 0, include_inactive: bool = False
) -> tuple[list[Machine], int]:
    """Return a page of machines by id and the total count."""
    where = [] if include_inactive else [col(Machine.active)]
    total = session.exec(select(func.count()).select_from(Machine).where(*where)).one()
    page = session.exec(
        select(Machine).where(*where).order_by(col(Machine.id)).offset(offset).limit(limit)
    ).all()
    return list(page), int(total)


def slots_of(*, session: Session, machine_ids: Sequence[str]) -> dict[str, list[Slot]]:
    """Return the slots of each machine, by slot number."""
    found: dict[str, list[Slot]] = {m: [] for m in machine_ids}
    if not machine_ids:
        return found
    rows = session.exec(
        select(Slot)
        .where(col(Slot.machine_id).in_(machine_ids))
        .order_by(col(Slot.machine_id), col(Slot.slot))
    ).all()
    for slot in rows:
        found[slot.machine_id].append(slot)
    return found


def open_alert_types(*, session: Session, machine_ids: Sequence[str]) -> dict[str, list[str]]:
    """Return the types of the unresolved alerts of each machine."""
    found: dict[str, list[str]] = {m: [] for m in machine_ids}
    if not machine_ids:
        return found
    rows = session.exec(
        select(Alert.machine_id, Alert.type).where(
            col(Alert.machine_id).in_(machine_ids), col(Alert.status) != AlertStatus.RESOLVED
        )
    ).all()
    for machine_id, kind in rows:
        if machine_id is not None:
            found[machine_id].append(kind)
    return found


def recent_events(*, session: Session, machine_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """Return a machine's latest events (vends and others), newest first."""
    vends = session.exec(
        select(DispenseEvent)
        .where(col(DispenseEvent.machine_id) == machine_id)
        .order_by(col(DispenseEvent.device_time).desc())
        .limit(limit)
    ).all()
    others = session.exec(
        select(MachineEvent)
        .where(col(MachineEvent.machine_id) == machine_id)
        .order_by(col(MachineEvent.device_time).desc())
        .limit(limit)
    ).all()
    merged: list[dict[str, Any]] = [
        {
            "kind": "vend",
            "boot_id": v.boot_id,
            "seq": v.seq,
            "device_time": v.device_time,
            "received_at": v.received_at,
            "slot": v.slot,
            "data": {
                "product": v.product,
                "result": v.result,
                "source": v.source,
                "drop_confirmed": v.drop_confirmed,
            },
        }
        for v in vends
    ] + [
        {
            "kind": e.kind,
            "boot_id": e.boot_id,
            "seq": e.seq,
            "device_time": e.device_time,
            "received_at": e.received_at,
            "slot": e.slot,
            "data": e.data,
        }
        for e in others
    ]
    merged.sort(key=lambda e: (e["device_time"], e["seq"]), reverse=True)
    return merged[:limit]


def list_alerts(
    *,
    session: Session,
    status: str | None = None,
    alert_type: str | None = None,
    machine_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    principal: Principal | None = None,
) -> tuple[list[Alert], int]:
    """Return a page of alerts, newest first, and the total matching (of those visible)."""
    where = [] if principal is None else [alert_filter(principal, session)]
    if status is not None:
        where.append(col(Alert.status) == status)
    if alert_type is not None:
        where.append(col(Alert.type) == alert_type)
    if machine_id is not None:
        where.append(col(Alert.machine_id) == machine_id)
    total = session.exec(select(func.count()).select_from(Alert).where(*where)).one()
    page = session.exec(
        select(Alert)
        .where(*where)
        .order_by(col(Alert.opened_at).desc(), col(Alert.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(page), int(total)


def _visible_alert(session: Session, alert_id: int, principal: Principal | None) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None or (principal is not None and not sees_alert(session, principal, alert)):
        raise NotFoundError(f"alert {alert_id} does not exist")
    return alert


def acknowledge_alert(
    *,
    session: Session,
    alert_id: int,
    by: str,
    principal: Principal | None = None,
    request_id: str | None = None,
) -> Alert:
    """Mark an open alert acknowledged by ``by`` (NotFoundError if ``principal`` cannot see it)."""
    alert = _visible_alert(session, alert_id, principal)
    if alert.status == AlertStatus.RESOLVED:
        raise InvalidTransitionError(f"alert {alert_id} is already resolved")
    before = snapshot(alert, ALERT_FIELDS)
    if alert_store.acknowledge(session, alert, by=by):
        record_audit(session, actor=by, action="alert.acknowledge", object_type="alert",
                     object_id=alert_id, before=before, after=snapshot(alert, ALERT_FIELDS),
                     request_id=request_id)
        session.commit()
        session.refresh(alert)
    return alert


def resolve_alert(
    *,
    session: Session,
    alert_id: int,
    by: str,
    principal: Principal | None = None,
    request_id: str | None = None,
) -> Alert:
    """Mark an alert resolved by ``by`` (idempotent; NotFoundError if not visible; audited)."""
    alert = _visible_alert(session, alert_id, principal)
    before = snapshot(alert, ALERT_FIELDS)
    if alert_store.resolve(session, alert, by=by):
        record_audit(session, actor=by, action="alert.resolve", object_type="alert",
                     object_id=alert_id, before=before, after=snapshot(alert, ALERT_FIELDS),
                     request_id=request_id)
        session.commit()
        session.refresh(alert)
    return alert


def record_restock_visit(
    *,
    session: Session,
    machine_id: str,
    counts: dict[int, int],
    actor: str,
    visited_by: str | None = None,
    counted_before: dict[int, int] | None = None,
    visited_at: datetime | None = None,
    default_low_threshold: int = DEFAULT_LOW_THRESHOLD,
    principal: Principal | None = None,
    request_id: str | None = None,
) -> RestockVisit:
    """Record a visit that set slot counts; closes the stock alerts it fixed; audits it.

    ``counted_before`` holds what the visitor found in each slot before loading;
    where it differs from the books it is stored as a discrepancy.
    """
    machine = get_machine(session=session, machine_id=machine_id, principal=principal)
    if machine is None:
        raise NotFoundError(f"machine {machine_id!r} is not registered")
    now = visited_at or utcnow()
    before: dict[str, int] = {}
    for number, new_count in sorted(counts.items()):
        slot = session.get(Slot, (machine_id, number))
        if slot is None:
            raise NotFoundError(f"machine {machine_id!r} has no slot {number}")
        before[str(number)] = slot.count
        if counted_before and number in counted_before:
            check = reconcile(slot.count, counted_before[number], StockSource.VISIT)
            if check.discrepancy is not None:
                session.add(
                    StockDiscrepancy(
                        machine_id=machine_id,
                        slot=number,
                        source=StockSource.VISIT.value,
                        expected=check.discrepancy.expected,
                        observed=check.discrepancy.observed,
                        detected_at=now,
                        details={"visited_by": visited_by},
                    )
                )
        try:
            change = restock(slot.count, new_count, StockSource.VISIT, capacity=slot.capacity)
        except OverCapacityError as exc:
            raise OverCapacityError(f"machine {machine_id!r} slot {number}: {exc}") from None
        slot.count = change.after
        slot.updated_at = now
        # Counts without lots: the lots already in the slot are trimmed first-expiry-first-out.
        fit_lots_to_count(session, machine_id, number, slot.count, now=now)
        session.flush()
        _settle_slot_alerts(session, slot, default_low_threshold)
    visit = RestockVisit(
        machine_id=machine_id,
        visited_at=now,
        visited_by=visited_by,
        counts={str(k): v for k, v in counts.items()},
    )
    session.add(visit)
    session.flush()
    record_audit(session, actor=actor, action="restock_visit.record", object_type="machine",
                 object_id=machine_id, before={"counts": before},
                 after={"counts": visit.counts, "visit_id": visit.id,
                        "visited_by": visited_by,
                        "counted_before": None if counted_before is None
                        else {str(k): v for k, v in counted_before.items()}},
                 request_id=request_id)
    session.commit()
    session.refresh(visit)
    return visit
