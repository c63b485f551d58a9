"""Issued restock plans and the visits they schedule (the forecast's deadlines)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow


class RestockPlanRecord(SQLModel, table=True):
    """A plan an outreach lead issued for a shift: what the vans will do."""

    __tablename__ = "restock_plan"

    id: int | None = Field(default=None, primary_key=True)
    shift_start: datetime = Field(sa_type=UTCDateTime)
    shift_end: datetime = Field(sa_type=UTCDateTime)
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    issued_by: str = Field(max_length=64)
    # The plan as GET /restock/plan answered it (backend.restock.model.Plan).
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class PlannedVisit(SQLModel, table=True):
    """One stop of an issued plan: the machine's next visit until the van has been."""

    __tablename__ = "planned_visit"
    __table_args__ = (Index("ix_planned_visit_machine_arrival", "machine_id", "arrival"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="restock_plan.id", index=True)
    machine_id: str = Field(max_length=63)
    van: int
    stop_order: int
    arrival: datetime = Field(sa_type=UTCDateTime)
    # A later plan for an overlapping shift supersedes this stop.
    superseded: bool = Field(default=False)
