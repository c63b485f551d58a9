"""Alerts: at most one unresolved alert per (type, subject), enforced by the database."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import computed_field
from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertType(StrEnum):
    LOW_STOCK = "low_stock"
    EMPTY_SLOT = "empty_slot"
    MACHINE_OFFLINE = "machine_offline"
    DELIVERY_GAP = "delivery_gap"
    TEMPERATURE = "temperature_excursion"
    DOOR_OPEN = "door_open"
    VEND_FAILURE = "vend_failure"
    OVERDOSE_HOTSPOT = "overdose_hotspot"
    DEAD_LETTER_FLOOD = "dead_letter_flood"
    NOTIFICATION_FAILED = "notification_failed"
    PREDICTED_STOCKOUT = "predicted_stockout"
    EXPIRING_STOCK = "expiring_stock"
    HEAT_EXPOSURE = "heat_exposure"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# The partial unique index: an acknowledged alert is still active, so only a
# resolved one frees its (type, subject) for a new alert.
ACTIVE_ALERT_WHERE = "status <> 'resolved'"


class AlertBase(SQLModel):
    type: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    subject: str = Field(max_length=128)
    machine_id: str | None = Field(default=None, max_length=63, index=True)
    message: str = Field(max_length=500)


class Alert(AlertBase, table=True):
    """Something a person should look at."""

    __table_args__ = (
        Index(
            "uq_alert_active",
            "type",
            "subject",
            unique=True,
            sqlite_where=text(ACTIVE_ALERT_WHERE),
            postgresql_where=text(ACTIVE_ALERT_WHERE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=AlertStatus.OPEN.value, max_length=16, index=True)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The principal (token name or OIDC subject), or "system" for the rules.
    acknowledged_by: str | None = Field(default=None, max_length=64)
    resolved_by: str | None = Field(default=None, max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AlertPublic(AlertBase):
    """An alert as the API shows it."""

    id: int
    status: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    acknowledged_by: str | None
    resolved_by: str | None
    details: dict[str, Any]

    @computed_field(  # type: ignore[prop-decorator]
        description="Deprecated: who acted last (resolved_by, else acknowledged_by)."
    )
    @property
    def acted_by(self) -> str | None:
        """Return who acted last, as before acknowledged_by and resolved_by were kept apart."""
        return self.resolved_by or self.acknowledged_by
