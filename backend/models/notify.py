"""Notification routes (who gets what) and the notification outbox (one row per delivery)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    APPRISE = "apprise"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    # An opening withdrawn before it was sent: the alert resolved first.
    CANCELLED = "cancelled"
    # Kept for the digest sent when the route's quiet hours end.
    HELD = "held"
    # Sent inside a digest.
    DIGESTED = "digested"


class NotificationRoute(SQLModel, table=True):
    """Where alerts of some types, severities and areas are sent."""

    __tablename__ = "notification_route"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    channel: str = Field(max_length=16)
    # A URL (webhook, Apprise) or comma-separated addresses (e-mail). Apprise
    # URLs carry their service's credentials: never logged, never listed.
    target: str = Field(max_length=1000)
    # The webhook's HMAC key (it must be readable to sign with).
    secret: str | None = Field(default=None, max_length=200)
    # Empty: every type, every area.
    alert_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    min_severity: str = Field(default="info", max_length=16)
    areas: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # A GeoJSON Polygon or MultiPolygon ([lon, lat]): alerts placed inside it
    # (a machine, a hotspot's centre or listed machines) match like a named area.
    polygon: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    enabled: bool = True
    # Seconds one delivery may take (None: NX_NOTIFY_TIMEOUT_S).
    timeout_s: float | None = None
    # A critical alert this route was told of and nobody acknowledged within
    # this many minutes goes to the escalation route (which may escalate on).
    escalate_after_min: int | None = None
    escalate_to_route_id: int | None = None
    # Daily quiet hours ("HH:MM" local time in quiet_tz): only critical alerts
    # are sent then; the rest go out as one digest when they end.
    quiet_start: str | None = Field(default=None, max_length=5)
    quiet_end: str | None = Field(default=None, max_length=5)
    quiet_tz: str | None = Field(default=None, max_length=64)
    # Time-of-day routing ("HH:MM" local time in quiet_tz, days 0 = Monday):
    # outside this window the route takes no new alerts (backend/notify/active.py).
    active_from: str | None = Field(default=None, max_length=5)
    active_until: str | None = Field(default=None, max_length=5)
    active_days: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Empty: every machine; else only alerts of machines with one of these tags.
    machine_tags: list[str] = Field(default_factory=list,
                                    sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Notification(SQLModel, table=True):
    """One delivery of one alert change (or test message) to one route: the outbox row."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_due", "state", "next_attempt_at"),
        Index("ix_notification_route_key", "route_id", "alert_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Sent as X-NaloxNet-Delivery, the same on every attempt: receivers drop repeats by it.
    delivery_id: str = Field(max_length=36, unique=True)
    # No foreign key: the history outlives a deleted route.
    route_id: int | None = None
    channel: str = Field(max_length=16)
    # What the delivery list shows of the target (no credentials).
    destination: str = Field(max_length=200)
    alert_id: int | None = Field(default=None, index=True)
    # "<type>|<subject>" of the alert: how flapping is recognised across alert ids.
    alert_key: str | None = Field(default=None, max_length=170)
    # opened, acknowledged, resolved, escalated, test
    event: str = Field(max_length=16)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=DeliveryState.PENDING.value, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # A dispatcher's claim: its id and until when it holds the row; a claim past
    # its lease (the dispatcher died) is taken over by another.
    claim_id: str | None = Field(default=None, max_length=36)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
