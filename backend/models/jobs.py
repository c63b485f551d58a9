"""The run log of periodic jobs: one row per job and period, so "ran once" is checkable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow


class JobRun(SQLModel, table=True):
    """One run of a periodic job; the unique key lets one process claim each period."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "period_start", name="uq_job_run_period"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=64)
    period_start: datetime = Field(sa_type=UTCDateTime)
    holder: str = Field(max_length=128)
    """``host:pid`` of the process that ran it."""
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=16)
    """"ok" or "failed"; None while running, and for ever if the holder died in the run."""
    error: str | None = Field(default=None, max_length=500)
