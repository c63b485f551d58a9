"""Commands the backend sends to machines, until each is answered or expires."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow


class CommandState(StrEnum):
    """Where a command stands; only ``pending`` ever changes."""

    PENDING = "pending"
    """Stored and (re)sent on a timeout until a result arrives or it expires."""
    DONE = "done"
    """The machine answered ``ok: true``."""
    FAILED = "failed"
    """The machine answered ``ok: false``."""
    EXPIRED = "expired"
    """No answer before ``expires_at``; no longer sent, and the broker drops queued copies."""


class MachineCommand(SQLModel, table=True):
    """One command to one machine, with its delivery state."""

    __tablename__ = "machine_command"
    # The agent's result carries (machine, command_id): the same key finds the command.
    __table_args__ = (
        UniqueConstraint("machine_id", "command_id", name="uq_machine_command_key"),
        Index("ix_machine_command_due", "state", "next_send_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    machine_id: str = Field(max_length=63, index=True)
    command_id: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    """The command exactly as published on the machine's ``cmd`` topic."""
    state: str = Field(default=CommandState.PENDING.value, max_length=16)
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    next_send_at: datetime = Field(sa_type=UTCDateTime)
    last_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    send_count: int = 0
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
