"""The fleet snapshot: every machine with its slots and health, read as plain rows.

The map asks for the whole fleet every few seconds; building ORM and pydantic
objects for 10,000 machines and 40,000 slots costs far more than the SQL, so
this module reads tuples and writes JSON directly. A short-lived cache (a
second by default) absorbs many consoles asking at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from backend.auth.principal import Principal
from backend.auth.scope import machine_filter
from backend.machine_state import MachineStatus, machine_health
from backend.models import Alert, AlertStatus, Machine, Slot
from backend.stock import effective_low_threshold


def _tables() -> tuple[Table, Table, Table]:
    return (
        Machine.__table__,  # type: ignore[attr-defined]
        Slot.__table__,  # type: ignore[attr-defined]
        Alert.__table__,  # type: ignore[attr-defined]
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def fleet_page(
    session: Session,
    *,
    limit: int,
    offset: int,
    default_threshold: int,
    principal: Principal | None = None,
) -> dict[str, Any]:
    """Return ``{"data": [MachinePublic...], "count": N}`` as plain JSON-ready values.

    With a ``principal`` limited to areas, only the machines in them.
    """
    m, s, a = _tables()
    active: ColumnElement[bool] = m.c.active.is_(True)
    if principal is not None:
        active = active & machine_filter(principal, m.c.area)
    total = session.execute(select(func.count()).select_from(m).where(active)).scalar_one()
    page = select(m.c.id).where(active).order_by(m.c.id).offset(offset).limit(limit).subquery()
    machines = session.execute(
        select(
            m.c.id,
            m.c.name,
            m.c.lat,
            m.c.lon,
            m.c.site,
            m.c.area,
            m.c.status,
            m.c.last_seen,
            m.c.firmware,
        )
        .where(m.c.id.in_(select(page.c.id)))
        .order_by(m.c.id)
    ).all()
    slots: dict[str, list[dict[str, Any]]] = {row.id: [] for row in machines}
    for row in session.execute(
        select(
            s.c.machine_id,
            s.c.slot,
            s.c.product,
            s.c.count,
            s.c.capacity,
            s.c.par,
            s.c.low_threshold,
        )
        .where(s.c.machine_id.in_(select(page.c.id)))
        .order_by(s.c.machine_id, s.c.slot)
    ):
        slots[row.machine_id].append(
            {
                "slot": row.slot,
                "product": row.product,
                "count": row.count,
                "capacity": row.capacity,
                "par": row.par,
                "low_threshold": row.low_threshold,
            }
        )
    alerts: dict[str, set[str]] = {row.id: set() for row in machines}
    counts: dict[str, int] = dict.fromkeys(slots, 0)
    for machine_id, kind in session.execute(
        select(a.c.machine_id, a.c.type).where(
            a.c.machine_id.in_(select(page.c.id)), a.c.status != AlertStatus.RESOLVED.value
        )
    ):
        alerts[machine_id].add(kind)
        counts[machine_id] += 1
    data = []
    for row in machines:
        status = MachineStatus.of(row.status)
        own = slots[row.id]
        levels = [
            (x["count"], effective_low_threshold(x["low_threshold"], default_threshold))
            for x in own
        ]
        data.append(
            {
                "id": row.id,
                "name": row.name,
                "lat": row.lat,
                "lon": row.lon,
                "site": row.site,
                "area": row.area,
                "status": status.value,
                "health": machine_health(
                    status=status, slot_levels=levels, open_alert_types=alerts[row.id]
                ).value,
                "last_seen": _iso(row.last_seen),
                "firmware": row.firmware,
                "slots": own,
                "open_alerts": counts[row.id],
            }
        )
    return {"data": data, "count": int(total)}


class SnapshotCache:
    """Serialized snapshot pages kept for ``ttl_s`` seconds (0 turns caching off)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pages: dict[Hashable, tuple[float, bytes]] = {}

    def get(self, key: Hashable, build: Callable[[], dict[str, Any]]) -> bytes:
        """Return the cached JSON for ``key``, or build, serialize and keep it."""
        now = self._clock()
        with self._lock:
            hit = self._pages.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        body = json.dumps(build(), separators=(",", ":")).encode("utf-8")
        if self.ttl_s > 0:
            with self._lock:
                self._pages[key] = (now + self.ttl_s, body)
        return body
