"""Request and response bodies of the notification routes and the delivery list."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, model_validator

from backend.models import AlertType, Channel, MachineTag, Severity
from backend.notify.geo import parse_area

ROUTE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@:-]*$"
CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
ChannelName = Literal["webhook", "email", "apprise"]
SeverityName = Literal["info", "warning", "critical"]
Weekday = Annotated[int, Field(ge=0, le=6, description="0 = Monday")]
# What a route may list in alert_types: alert types, and the weekly situation report
# (backend/report/send.py), which only routes listing it get.
RouteSubject = AlertType | Literal["report.weekly"]


def check_rules(rules: dict[str, Any]) -> None:
    """Raise ValueError unless escalation and quiet hours are each complete and valid."""
    if (rules.get("escalate_after_min") is None) != (rules.get("escalate_to_route_id") is None):
        raise ValueError("escalate_after_min and escalate_to_route_id go together")
    if (rules.get("quiet_start") is None) != (rules.get("quiet_end") is None):
        raise ValueError("quiet_start and quiet_end go together")
    if (rules.get("active_from") is None) != (rules.get("active_until") is None):
        raise ValueError("active_from and active_until go together")
    if rules.get("polygon") is not None:
        parse_area(rules["polygon"])
    if rules.get("quiet_tz"):
        try:
            ZoneInfo(rules["quiet_tz"])
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(f"quiet_tz {rules['quiet_tz']!r} is not a known time zone") from None


def check_target(channel: str, target: str) -> None:
    """Raise ValueError unless ``target`` is something ``channel`` can send to."""
    if channel == Channel.WEBHOOK.value:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a webhook target is an http:// or https:// URL")
    elif channel == Channel.EMAIL.value:
        addresses = [a.strip() for a in target.split(",")]
        if not addresses or not all(EMAIL.match(a) for a in addresses):
            raise ValueError("an email target is one or more addresses, separated by commas")
    else:
        from backend.notify.channels.chat import is_apprise_url

        if not is_apprise_url(target):
            raise ValueError("an apprise target is an Apprise URL it supports, "
                             "such as tgram://bottoken/chatid")


class RouteRules(BaseModel):
    """What a route takes (empty lists: everything)."""

    alert_types: list[RouteSubject] = Field(
        default_factory=list, max_length=50,
        description="Alert types (none: every type) and report.weekly for the weekly report")
    min_severity: SeverityName = Severity.INFO.value
    areas: list[str] = Field(default_factory=list, max_length=100)
    polygon: dict[str, Any] | None = Field(
        default=None, description="A GeoJSON Polygon or MultiPolygon ([lon, lat])")
    enabled: bool = True
    timeout_s: float | None = Field(default=None, gt=0, le=60)
    escalate_after_min: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    escalate_to_route_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    quiet_start: str | None = Field(default=None, pattern=CLOCK)
    quiet_end: str | None = Field(default=None, pattern=CLOCK)
    quiet_tz: str | None = Field(default=None, max_length=64)
    active_from: str | None = Field(default=None, pattern=CLOCK)
    active_until: str | None = Field(default=None, pattern=CLOCK)
    active_days: list[Weekday] = Field(default_factory=list, max_length=7)
    machine_tags: list[MachineTag] = Field(
        default_factory=list, max_length=20, description="Machines with any of these tags")

    @model_validator(mode="after")
    def _rules_complete(self) -> RouteRules:
        check_rules(self.model_dump())
        return self


class RouteCreate(RouteRules):
    name: str = Field(min_length=1, max_length=64, pattern=ROUTE_NAME)
    channel: ChannelName
    target: str = Field(min_length=1, max_length=1000,
                        description="URL (webhook, Apprise) or comma-separated e-mail addresses")
    secret: str | None = Field(default=None, min_length=16, max_length=200,
                               description="The webhook's HMAC key (write-only)")

    @model_validator(mode="after")
    def _target_fits_channel(self) -> RouteCreate:
        check_target(self.channel, self.target)
        return self


class RouteUpdate(BaseModel):
    """Fields to change; those left out stay as they are."""

    target: str | None = Field(default=None, min_length=1, max_length=1000)
    secret: str | None = Field(default=None, min_length=16, max_length=200)
    alert_types: list[RouteSubject] | None = Field(default=None, max_length=50)
    min_severity: SeverityName | None = None
    areas: list[str] | None = Field(default=None, max_length=100)
    polygon: dict[str, Any] | None = None
    enabled: bool | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=60)
    escalate_after_min: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    escalate_to_route_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    quiet_start: str | None = Field(default=None, pattern=CLOCK)
    quiet_end: str | None = Field(default=None, pattern=CLOCK)
    quiet_tz: str | None = Field(default=None, max_length=64)
    active_from: str | None = Field(default=None, pattern=CLOCK)
    active_until: str | None = Field(default=None, pattern=CLOCK)
    active_days: list[Weekday] | None = Field(default=None, max_length=7)
    machine_tags: list[MachineTag] | None = Field(default=None, max_length=20)


class RoutePublic(BaseModel):
    """A route as the API shows it: never its secret, nor more of its target than the host."""

    id: int
    name: str
    channel: str
    destination: str
    secret_set: bool
    alert_types: list[str]
    min_severity: str
    areas: list[str]
    polygon: dict[str, Any] | None
    enabled: bool
    timeout_s: float | None
    escalate_after_min: int | None
    escalate_to_route_id: int | None
    quiet_start: str | None
    quiet_end: str | None
    quiet_tz: str | None
    active_from: str | None
    active_until: str | None
    active_days: list[int]
    machine_tags: list[str]
    created_at: datetime


class RoutesPage(BaseModel):
    data: list[RoutePublic]
    count: int


class NotificationPublic(BaseModel):
    """One delivery with its attempts and last error."""

    id: int
    delivery_id: str
    route_id: int | None
    channel: str
    destination: str
    alert_id: int | None
    event: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class NotificationsPage(BaseModel):
    data: list[NotificationPublic]
    count: int
