"""Read the audit trail: filtered pages (newest first) and a full walk (oldest first)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from backend.models import AuditRecord

EXPORT_BATCH = 1000


@dataclass(frozen=True)
class AuditFilter:
    """Which records to return; ``since`` is inclusive, ``until`` exclusive, None: any."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None

    def where(self) -> list[Any]:
        """Return the SQL conditions of this filter."""
        conditions: list[Any] = []
        if self.since is not None:
            conditions.append(col(AuditRecord.at) >= self.since)
        if self.until is not None:
            conditions.append(col(AuditRecord.at) < self.until)
        for name in ("actor", "action", "object_type", "object_id"):
            value = getattr(self, name)
            if value is not None:
                conditions.append(getattr(AuditRecord, name) == value)
        return conditions


def list_audit(
    session: Session, *, filters: AuditFilter, limit: int = 100, offset: int = 0
) -> tuple[list[AuditRecord], int]:
    """Return a page of matching records, newest first, and how many match in all."""
    where = filters.where()
    total = session.exec(select(func.count()).select_from(AuditRecord).where(*where)).one()
    page = session.exec(
        select(AuditRecord).where(*where).order_by(col(AuditRecord.id).desc())
        .offset(offset).limit(limit)
    ).all()
    return list(page), int(total)


def iter_audit(
    session: Session, *, filters: AuditFilter, batch: int = EXPORT_BATCH
) -> Iterator[AuditRecord]:
    """Yield every matching record, oldest first, reading ``batch`` rows at a time."""
    where = filters.where()
    last_id = 0
    while True:
        rows = session.exec(
            select(AuditRecord).where(*where, col(AuditRecord.id) > last_id)
            .order_by(col(AuditRecord.id)).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id or last_id
