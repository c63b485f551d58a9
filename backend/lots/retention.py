"""How long temperature readings are kept: older rows are deleted by ingest maintenance.

A lot's heat exposure is added up from the readings since it was loaded, so
the retention (``NX_TEMPERATURE_RETENTION_DAYS``, default 400) should be
longer than a lot stays in a machine; a lot older than that is assessed on
the readings kept (docs/restock.md).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy import select as sa_select
from sqlmodel import Session

from backend.models import TemperatureReading

log = logging.getLogger(__name__)

PRUNE_BATCH = 10_000
"""Rows deleted per maintenance run at most: one run never holds the write lock for long."""


def prune_temperature_readings(
    session: Session, *, before: datetime, limit: int = PRUNE_BATCH
) -> int:
    """Delete up to ``limit`` temperature readings taken before ``before``, oldest first."""
    table = TemperatureReading.__table__  # type: ignore[attr-defined]
    oldest = sa_select(table.c.id).where(table.c.at < before).order_by(table.c.at).limit(limit)
    result = session.execute(delete(table).where(table.c.id.in_(oldest.scalar_subquery())))
    pruned = int(result.rowcount)  # type: ignore[attr-defined]
    if pruned:
        log.info("pruned %d temperature readings taken before %s", pruned, before.isoformat())
    return pruned
