"""Restock visits and stock discrepancies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow


class RestockVisit(SQLModel, table=True):
    """An outreach visit that set slot counts."""

    __tablename__ = "restock_visit"

    id: int | None = Field(default=None, primary_key=True)
    machine_id: str = Field(max_length=63, index=True)
    visited_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    visited_by: str | None = Field(default=None, max_length=64)
    counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


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
