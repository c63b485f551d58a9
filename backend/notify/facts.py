"""What a notification says about an alert, taken from an ORM row or a RETURNING row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from backend.models import Alert


class AlertEvent(StrEnum):
    """The alert changes people are told about."""

    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    TEST = "test"


@dataclass(frozen=True)
class AlertFacts:
    """An alert as it is after a change."""

    id: int
    type: str
    severity: str
    subject: str
    machine_id: str | None
    message: str
    status: str
    opened_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Return "<type>|<subject>": the same for every alert of one thing."""
        return f"{self.type}|{self.subject}"[:170]


FACT_COLUMNS = (
    "id", "type", "severity", "subject", "machine_id", "message", "status", "opened_at",
    "acknowledged_at", "resolved_at", "acknowledged_by", "resolved_by", "details",
)


def facts_of(alert: Alert) -> AlertFacts:
    """Return the facts of an ORM alert (it must have its id)."""
    if alert.id is None:
        raise ValueError("an alert without an id cannot be notified")
    return facts_from_mapping({name: getattr(alert, name) for name in FACT_COLUMNS})


def facts_from_mapping(row: Mapping[Any, Any]) -> AlertFacts:
    """Return the facts of a row holding ``FACT_COLUMNS``."""
    return AlertFacts(**{name: row[name] for name in FACT_COLUMNS})
