"""Periodic checks an ingest worker runs between batches: delivery gaps and silent machines."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, func, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from backend.alerts.rules import machine_alert_spec
from backend.alerts.store import open_alert, resolve_alerts
from backend.dbutil import insert_ignore
from backend.ingest.gaps import scan_gaps
from backend.machine_state import TIMED_OUT, MachineStatus
from backend.models import AlertType, DeliveryGap, DispenseEvent, Machine, MachineEvent

log = logging.getLogger(__name__)

MAX_SEQS_PER_SCAN = 50_000
"""Bound on the seqs read for one machine per scan; the rest wait for the next scan."""


@dataclass
class MaintenanceResult:
    gaps_opened: int = 0
    gaps_filled: int = 0
    machines_offline: int = 0


def _event_tables() -> tuple[Table, Table]:
    return (
        DispenseEvent.__table__,  # type: ignore[attr-defined]
        MachineEvent.__table__,  # type: ignore[attr-defined]
    )


def _seqs_above(session: Session, machine_id: str, mark: int | None) -> list[tuple[int, datetime]]:
    floor = -1 if mark is None else mark
    parts = [
        sa_select(t.c.seq, t.c.received_at).where(t.c.machine_id == machine_id, t.c.seq > floor)
        for t in _event_tables()
    ]
    both = union_all(*parts).subquery()
    rows = session.execute(
        sa_select(both.c.seq, both.c.received_at).order_by(both.c.seq).limit(MAX_SEQS_PER_SCAN)
    ).all()
    return [(int(seq), at) for seq, at in rows]


def _count_present(session: Session, machine_id: str, lo: int, hi: int) -> int:
    parts = [
        sa_select(t.c.seq).where(t.c.machine_id == machine_id, t.c.seq >= lo, t.c.seq <= hi)
        for t in _event_tables()
    ]
    both = union_all(*parts).subquery()
    return int(session.execute(sa_select(func.count(func.distinct(both.c.seq)))).scalar_one())


def scan_delivery_gaps(session: Session, *, now: datetime, timeout: timedelta) -> MaintenanceResult:
    """Advance each machine's seq watermark; record holes older than ``timeout`` as gaps."""
    result = MaintenanceResult()
    pending = session.exec(
        select(Machine)
        .where(col(Machine.max_seq).is_not(None))
        .where(
            (col(Machine.seq_watermark).is_(None))
            | (col(Machine.max_seq) > col(Machine.seq_watermark))
        )
        .order_by(col(Machine.id))
        .with_for_update()
    ).all()
    for machine in pending:
        scan = scan_gaps(
            machine.seq_watermark,
            _seqs_above(session, machine.id, machine.seq_watermark),
            now=now,
            timeout=timeout,
        )
        for lo, hi in scan.gaps:
            log.warning("delivery gap: %s seq %d..%d never arrived", machine.id, lo, hi)
            insert_ignore(
                session,
                DeliveryGap,
                [{"machine_id": machine.id, "from_seq": lo, "to_seq": hi, "detected_at": now}],
            )
            open_alert(
                session,
                machine_alert_spec(
                    AlertType.DELIVERY_GAP,
                    machine.id,
                    f"{machine.id}: events {lo}..{hi} never arrived",
                ),
                details={"from_seq": lo, "to_seq": hi},
                now=now,
            )
            result.gaps_opened += 1
        machine.seq_watermark = scan.watermark
    result.gaps_filled = _check_filled(session, now)
    return result


def _check_filled(session: Session, now: datetime) -> int:
    filled = 0
    open_gaps = session.exec(select(DeliveryGap).where(col(DeliveryGap.filled_at).is_(None))).all()
    touched: set[str] = set()
    for gap in open_gaps:
        size = gap.to_seq - gap.from_seq + 1
        if _count_present(session, gap.machine_id, gap.from_seq, gap.to_seq) == size:
            gap.filled_at = now
            touched.add(gap.machine_id)
            filled += 1
    for machine_id in touched:
        still_open = session.exec(
            select(DeliveryGap.id).where(
                col(DeliveryGap.machine_id) == machine_id, col(DeliveryGap.filled_at).is_(None)
            )
        ).first()
        if still_open is None:
            resolve_alerts(session, AlertType.DELIVERY_GAP, machine_id, now=now)
    return filled


def mark_silent_machines(session: Session, *, now: datetime, timeout: timedelta) -> int:
    """Mark online machines not heard from within ``timeout`` offline and alert."""
    silent = session.exec(
        select(Machine)
        .where(
            col(Machine.active),
            col(Machine.status) == MachineStatus.ONLINE.value,
            col(Machine.last_seen) < now - timeout,
        )
        .order_by(col(Machine.id))
        .with_for_update()
    ).all()
    for machine in silent:
        machine.status, machine.status_source = TIMED_OUT.status.value, TIMED_OUT.source.value
        open_alert(
            session,
            machine_alert_spec(
                AlertType.MACHINE_OFFLINE,
                machine.id,
                f"{machine.id}: no heartbeat for {int(timeout.total_seconds())} s",
            ),
            details={
                "reason": "missed heartbeats",
                "last_seen": machine.last_seen.isoformat() if machine.last_seen else None,
            },
            now=now,
        )
    return len(silent)
