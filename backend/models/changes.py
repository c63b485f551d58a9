"""The fleet change log: which machine's snapshot changed, written by database triggers."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer
from sqlmodel import Field, SQLModel


class FleetChange(SQLModel, table=True):
    """One change to what the fleet snapshot shows of a machine.

    Triggers on ``machine``, ``slot`` and ``alert`` (migration 0021) append a
    row whenever a write touches what ``GET /api/v1/machines`` shows, whoever
    writes (ingest, the API, jobs, a script), so the API reads only what changed
    since it last looked (backend/api/snapshot.py). On SQLite ``id`` orders the
    changes (one writer at a time, AUTOINCREMENT never reuses an id); on
    PostgreSQL writers run side by side, so ``txid`` (the writing transaction's
    id) is compared with snapshots instead. Rows are pruned once every reader
    has seen them.
    """

    __tablename__ = "fleet_change"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    machine_id: str = Field(max_length=63)
    txid: int | None = Field(default=None, sa_type=BigInteger, index=True)
