"""Restock visits and stock discrepancies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow


class RestockVisit(SQLModel, table=True):
    """An outreach visit that set slot counts."""

    __tablename__ = "restock_visit"
    # A retried POST /visits (same caller, same Idempotency-Key) finds the visit already here.
    __table_args__ = (
        UniqueConstraint("visited_by", "idempotency_key", name="uq_restock_visit_idempotency"),
    )

    id: int | None = Field(default=None, primary_key=True)
    machine_id: str = Field(max_length=63, index=True)
    visited_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    visited_by: str | None = Field(default=None, max_length=64)
    counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    idempotency_key: str | None = Field(default=None, max_length=128)
    # SHA-256 of the request body: the same key with another body is refused.
    request_digest: str | None = Field(default=None, max_length=64)
    # What was found, loaded and removed (POST /visits), and the answer given.
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class StockDiscrepancy(SQLModel, table=True):
    """Two accounts of a slot disagreed; both numbers are kept."""

    __tablename__ = "stock_discrepancy"

    id: int | None = Field(default=None, primary_key=True)
    machine_id: str = Field(max_length=63, index=True)
    slot: int
    source: str = Field(max_length=16)
    expected: int
    observed: int
    detected_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    device_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class TemperatureReading(SQLModel, table=True):
    """A machine's temperature at a device time (heartbeats and crossing events)."""

    __tablename__ = "temperature_reading"
    __table_args__ = (Index("ix_temperature_reading_machine_at", "machine_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    machine_id: str = Field(max_length=63)
    at: datetime = Field(sa_type=UTCDateTime)
    celsius: float
