"""Reading the fleet snapshot from the database: whole, or only the machines changed since a cursor.

Plain rows and hand-written JSON: building ORM and pydantic objects for 10,000
machines and 40,000 slots costs far more than the SQL. Each read runs in one
transaction that sees one state of the database (REPEATABLE READ on
PostgreSQL; a SQLite read transaction sees one state by itself), and returns
the cursor naming that state (backend/api/fleet_store.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, select, text, true
from sqlalchemy.sql.elements import ColumnElement

from backend.api.fleet_store import Cursor, MachineEntry
from backend.machine_state import MachineStatus, machine_health
from backend.models import Alert, AlertStatus, FleetChange, Machine, Slot
from backend.stock import effective_low_threshold

CHUNK = 500
"""Machine ids per IN list: far below any driver's limit on bound parameters."""


def _tables() -> tuple[Table, Table, Table, Table]:
    return (
        Machine.__table__,  # type: ignore[attr-defined]
        Slot.__table__,  # type: ignore[attr-defined]
        Alert.__table__,  # type: ignore[attr-defined]
        FleetChange.__table__,  # type: ignore[attr-defined]
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class FleetRead:
    """What one read found: the state it saw, the changes since the last, and the machines."""

    cursor: Cursor
    changes: tuple[tuple[int, str], ...]
    entries: dict[str, MachineEntry | None]
    """Each machine read (None: no longer active, or deleted)."""
    floor: Cursor | None = None
    """A whole read: the oldest state from which ``changes`` (the whole log) tell every change."""


def _cursor(connection: Connection) -> Cursor:
    if connection.dialect.name == "postgresql":
        found = Cursor.parse(connection.execute(text("SELECT pg_current_snapshot()::text"))
                             .scalar_one())
        if found is None:
            raise RuntimeError("PostgreSQL returned a snapshot this code cannot read")
        return found
    # sqlite_sequence keeps the highest id ever given, even once the log is pruned empty.
    last = connection.execute(
        text("SELECT seq FROM sqlite_sequence WHERE name = 'fleet_change'")).scalar()
    return Cursor.after(int(last or 0))


def _changes(connection: Connection, since: Cursor) -> tuple[tuple[int, str], ...]:
    f = _tables()[3]
    if connection.dialect.name == "postgresql":
        # Transactions below xmin were over when ``since`` was taken: all seen then.
        rows = connection.execute(select(f.c.txid, f.c.machine_id).where(f.c.txid >= since.xmin))
    else:
        rows = connection.execute(select(f.c.id, f.c.machine_id).where(f.c.id >= since.xmax))
    return tuple((int(c), m) for c, m in rows if not since.holds(int(c)))


def prune(engine: Engine, below: Cursor) -> int:
    """Delete the changes every reader has had since ``below``; return how many went."""
    f = _tables()[3]
    with engine.begin() as connection:
        column = f.c.txid if connection.dialect.name == "postgresql" else f.c.id
        return int(connection.execute(f.delete().where(column < below.xmin)).rowcount or 0)


def _begin(engine: Engine) -> Connection:
    connection = engine.connect()
    if connection.dialect.name == "postgresql":
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
    return connection


def read_fleet(engine: Engine, *, default_threshold: int, since: Cursor | None = None
               ) -> FleetRead:
    """Read every active machine (``since`` None), or those changed since ``since``."""
    with _begin(engine) as connection, connection.begin():
        cursor = _cursor(connection)
        if since is None:
            entries = _entries(connection, None, default_threshold)
            # The log holds every change from its oldest row on (pruning takes the oldest
            # first), so cursors from before this read, another replica's, are answered.
            changes = _changes(connection, Cursor(0, 0))
            floor = Cursor.after(min(c for c, _ in changes) - 1) if changes else cursor
            return FleetRead(cursor, changes, dict(entries), floor)
        changes = _changes(connection, since)
        ids = sorted({m for _, m in changes})
        found: dict[str, MachineEntry | None] = dict.fromkeys(ids)
        for start in range(0, len(ids), CHUNK):
            found.update(_entries(connection, ids[start:start + CHUNK], default_threshold))
        return FleetRead(cursor, changes, found)


def _entries(connection: Connection, ids: Sequence[str] | None, default_threshold: int
             ) -> dict[str, MachineEntry]:
    m, s, a, _ = _tables()
    where: ColumnElement[bool] = m.c.active.is_(True)
    if ids is not None:
        where = where & m.c.id.in_(ids)
    machines = connection.execute(
        select(m.c.id, m.c.name, m.c.lat, m.c.lon, m.c.site, m.c.area, m.c.status,
               m.c.last_seen, m.c.firmware, m.c.tags).where(where).order_by(m.c.id)
    ).all()
    chosen = [row.id for row in machines]
    slot_where = s.c.machine_id.in_(chosen) if ids is not None else true()
    alert_where = a.c.machine_id.in_(chosen) if ids is not None else a.c.machine_id.is_not(None)
    slots: dict[str, list[dict[str, Any]]] = {row.id: [] for row in machines}
    for row in connection.execute(
        select(s.c.machine_id, s.c.slot, s.c.product, s.c.count, s.c.capacity, s.c.par,
               s.c.low_threshold).where(slot_where).order_by(s.c.machine_id, s.c.slot)
    ):
        own = slots.get(row.machine_id)
        if own is not None:
            own.append({"slot": row.slot, "product": row.product, "count": row.count,
                        "capacity": row.capacity, "par": row.par,
                        "low_threshold": row.low_threshold})
    alerts: dict[str, list[str]] = {row.id: [] for row in machines}
    for machine_id, kind in connection.execute(
        select(a.c.machine_id, a.c.type).where(
            alert_where, a.c.status != AlertStatus.RESOLVED.value)
    ):
        if machine_id in alerts:
            alerts[machine_id].append(kind)
    return {row.id: _entry(row, slots[row.id], alerts[row.id], default_threshold)
            for row in machines}


def _entry(row: Any, slots: list[dict[str, Any]], alerts: Iterable[str],
           default_threshold: int) -> MachineEntry:
    status = MachineStatus.of(row.status)
    kinds = list(alerts)
    levels = [(x["count"], effective_low_threshold(x["low_threshold"], default_threshold))
              for x in slots]
    tags = row.tags if isinstance(row.tags, list) else json.loads(row.tags or "[]")
    public = {
        "id": row.id,
        "name": row.name,
        "lat": row.lat,
        "lon": row.lon,
        "site": row.site,
        "area": row.area,
        "status": status.value,
        "health": machine_health(status=status, slot_levels=levels,
                                 open_alert_types=set(kinds)).value,
        "last_seen": _iso(row.last_seen),
        "firmware": row.firmware,
        "tags": list(tags),
        "slots": slots,
        "open_alerts": len(kinds),
    }
    fragment = json.dumps(public, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return MachineEntry(row.id, row.area, fragment)
