"""Response and request bodies of the API that are not table models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from backend.models import AlertPublic


class SlotPublic(BaseModel):
    slot: int
    product: str | None
    count: int
    capacity: int
    par: int | None
    low_threshold: int | None


class MachinePublic(BaseModel):
    id: str
    name: str
    lat: float
    lon: float
    site: str | None
    status: Literal["online", "offline", "unknown"]
    health: Literal["ok", "low_stock", "empty", "offline", "alarm"]
    last_seen: datetime | None
    firmware: str | None
    slots: list[SlotPublic]
    open_alerts: int


class EventPublic(BaseModel):
    kind: str
    boot_id: int
    seq: int
    device_time: datetime
    received_at: datetime
    slot: int | None
    data: dict[str, Any]


class MachineDetail(MachinePublic):
    temperature_c: float | None
    door: str | None
    boot_id: int | None
    recent_events: list[EventPublic]


class MachinesPage(BaseModel):
    data: list[MachinePublic]
    count: int


class AlertsPage(BaseModel):
    data: list[AlertPublic]
    count: int


class AlertAction(BaseModel):
    """Who acknowledges or resolves an alert (a role or team name, not a person's identity)."""

    by: str = Field(default="console", min_length=1, max_length=64)


class RestockVisitCreate(BaseModel):
    counts: dict[int, int] = Field(description="slot number -> count after loading")
    counted_before: dict[int, int] | None = None
    visited_by: str | None = Field(default=None, max_length=64)


class RestockVisitPublic(BaseModel):
    id: int
    machine_id: str
    visited_at: datetime
    visited_by: str | None
    counts: dict[str, int]
