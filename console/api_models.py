"""Pydantic models of the backend API's JSON, as the console reads it."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

_T = TypeVar("_T")


class _ApiModel(BaseModel):
    # The backend may grow fields; the console reads what it knows.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Health(StrEnum):
    """A machine's state at a glance, worst first in ``HEALTH_ORDER``."""

    OK = "ok"
    LOW_STOCK = "low_stock"
    EMPTY = "empty"
    OFFLINE = "offline"
    ALARM = "alarm"


class Presence(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class SlotPublic(_ApiModel):
    slot: int
    product: str | None = None
    count: int
    capacity: int | None = None
    par: int | None = None
    low_threshold: int | None = None


class MachinePublic(_ApiModel):
    id: str
    name: str
    lat: float | None = None
    lon: float | None = None
    site: str | None = None
    status: Presence = Presence.UNKNOWN
    health: Health
    last_seen: datetime | None = None
    firmware: str | None = None
    slots: list[SlotPublic] = Field(default_factory=list)
    open_alerts: int = 0


class MachineDetail(MachinePublic):
    recent_events: list[dict[str, Any]] = Field(default_factory=list)


class AlertPublic(_ApiModel):
    id: int | str
    type: str
    severity: str
    subject: str
    machine_id: str | None = None
    status: AlertStatus
    opened_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    acted_by: str | None = None
    message: str = ""
    details: dict[str, Any] | None = None


class Page(_ApiModel, Generic[_T]):
    """One page of a list endpoint: ``{"data": [...], "count": N}``."""

    data: list[_T]
    count: int


class PointGeometry(_ApiModel):
    type: str = "Point"
    coordinates: tuple[float, float]
    """GeoJSON order: longitude, latitude."""


class HotspotFeature(_ApiModel):
    """One hotspot area as the API's GeoJSON serves it (a centre point and a radius)."""

    type: str = "Feature"
    id: int | str | None = None
    geometry: PointGeometry
    properties: dict[str, Any] = Field(default_factory=dict)


class HotspotCollection(_ApiModel):
    type: str = "FeatureCollection"
    features: list[HotspotFeature] = Field(default_factory=list)


class AreaFeature(_ApiModel):
    """One named area: its polygon (None when the export knows no outline) and properties.

    ``GET /api/v1/areas`` gives ``name``; the dispense export adds ``total`` and
    per-period counts, already suppressed by the backend ("<5", "suppressed").
    """

    type: str = "Feature"
    geometry: dict[str, Any] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class AreaCollection(_ApiModel):
    type: str = "FeatureCollection"
    features: list[AreaFeature] = Field(default_factory=list)
    suppression_k: int | None = None
    """Set by the dispense export: counts below it are shown as "<k" (None: admin sees all)."""


class RestockVisitPublic(_ApiModel):
    """A recorded restock visit, as the API returns it."""

    id: int
    machine_id: str
    visited_at: datetime
    visited_by: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)


class Identity(_ApiModel):
    """Who the API says the caller is (``GET /api/v1/auth/me``)."""

    name: str
    role: str
    """Kept as the API's text: a role this console does not know gets no pages, not a crash."""
    areas: list[str] = Field(default_factory=list)
    source: str = "token"


class TokenPublic(_ApiModel):
    """An API token as listed (never the token itself)."""

    name: str
    role: str
    prefix: str = ""
    areas: list[str] = Field(default_factory=list)
    state: str = "live"
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class TokenCreated(TokenPublic):
    """A new token: the only response that carries the secret."""

    token: str = Field(repr=False)


class AuditRecord(_ApiModel):
    """One entry of the audit trail (``GET /api/v1/audit``)."""

    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    request_id: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class NotificationRoute(_ApiModel):
    """A notification route as listed (its target cut to scheme and host, never its secret)."""

    id: int
    name: str
    channel: str
    destination: str
    secret_set: bool = False
    alert_types: list[str] = Field(default_factory=list)
    min_severity: str = "info"
    areas: list[str] = Field(default_factory=list)
    enabled: bool = True
    escalate_after_min: int | None = None
    escalate_to_route_id: int | None = None
    quiet_start: str | None = None
    quiet_end: str | None = None
    quiet_tz: str | None = None


class Delivery(_ApiModel):
    """One notification delivery (``GET /api/v1/notifications``)."""

    id: int
    delivery_id: str
    route_id: int | None = None
    channel: str
    destination: str
    alert_id: int | None = None
    event: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None


class LatLon(_ApiModel):
    lat: float
    lon: float


class LoadLine(_ApiModel):
    """Items of one slot to load at a stop (``GET /api/v1/restock/plan``)."""

    slot: int
    product: str
    count: int
    """What the books say the slot holds now."""
    par: int
    to_par: int
    replace: int = 0
    """Doses to take out and replace (expired, heat-exposed)."""
    replace_lots: list[str] = Field(default_factory=list)
    quantity: int
    """Items to bring: to_par + replace."""


class PlannedStop(_ApiModel):
    """One machine on a van's route, with its arrival time and what to load."""

    order: int
    machine_id: str
    name: str
    lat: float
    lon: float
    urgency: str
    reasons: list[str] = Field(default_factory=list)
    arrival: datetime
    departure: datetime
    service_minutes: float
    items: int
    load: list[LoadLine] = Field(default_factory=list)


class ProductLoad(_ApiModel):
    product: str
    quantity: int


class VanRoute(_ApiModel):
    """One van's shift: stops in order, its load, distance and times."""

    van: int
    stops: list[PlannedStop] = Field(default_factory=list)
    load_list: list[ProductLoad] = Field(default_factory=list)
    items: int
    distance_km: float
    drive_minutes: float
    service_minutes: float
    departure: datetime
    return_time: datetime


class LeftOut(_ApiModel):
    machine_id: str
    urgency: str
    items: int
    reason: str


class RestockPlan(_ApiModel):
    """A restock plan for one shift (``GET /api/v1/restock/plan``)."""

    depot: LatLon
    shift_start: datetime
    shift_end: datetime
    van_capacity: int
    distance_source: str = ""
    vans: list[VanRoute] = Field(default_factory=list)
    left_out: list[LeftOut] = Field(default_factory=list)
    distance_km: float = 0.0
    served: int = 0


class IssuedPlan(_ApiModel):
    """A plan as issued (``POST /api/v1/restock/plans``): its stops are the next planned visits."""

    id: int
    issued_at: datetime
    issued_by: str
    plan: RestockPlan


class VisitRecorded(_ApiModel):
    """A visit as ``POST /api/v1/visits`` answers (also for a replayed retry)."""

    id: int
    machine_id: str
    visited_at: datetime
    visited_by: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    discrepancies: list[dict[str, int]] = Field(default_factory=list)
    resolved_alerts: int = 0


class CommandState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


class CommandResult(_ApiModel):
    ok: bool
    error: str | None = None
    received_at: datetime | None = None


class MachineCommand(_ApiModel):
    """A command sent to a machine and its state (``/api/v1/machines/{id}/commands``)."""

    command_id: str
    machine_id: str
    kind: str
    state: CommandState
    payload: dict[str, Any] = Field(default_factory=dict)
    created_by: str = ""
    created_at: datetime
    expires_at: datetime | None = None
    send_count: int = 0
    completed_at: datetime | None = None
    result: CommandResult | None = None


class DeviceCredential(_ApiModel):
    """A new machine's broker credential: shown once (``POST /api/v1/devices``)."""

    machine_id: str
    mqtt_username: str
    mqtt_password: str = Field(repr=False)
    agent_config: str = Field(repr=False)
class HotspotSeries(_ApiModel):
    """A hotspot's daily dispenses against its expected level (``/hotspots/{id}/series``)."""

    alert_id: int
    detector: str = ""
    timezone: str = "UTC"
    days: list[date]
    observed: list[int | None]
    """None where the count is suppressed (under the threshold, or one that would reveal it)."""
    small: list[bool]
    expected: list[float]
    total: int | None = None
    window_start: date
    window_end: date
    suppression_k: int | None = None
    explanation: str = ""


class DispenseSeries(_ApiModel):
    """One area's, product's or machine's counts per bucket; None where suppressed."""

    key: str
    counts: list[int | None]
    small: list[bool]
    total: int | None = None


class StatsToday(_ApiModel):
    """The day periods ending "today" end on (``GET /api/v1/stats/today``).

    Under the backend's data clock (replays, the accelerated demo) it is the
    newest dispense's day, not the wall clock's.
    """

    today: date
    timezone: str = "UTC"
    clock: str = "wall"


class DispenseStats(_ApiModel):
    """Dispenses per bucket and group (``GET /api/v1/stats/dispenses``)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    bucket: str
    group: str
    timezone: str = "UTC"
    suppression_k: int | None = None
    buckets: list[datetime]
    series: list[DispenseSeries]
    totals: list[int | None] = Field(default_factory=list)
    total: int | None = None


class TemperaturePoint(_ApiModel):
    at: datetime
    celsius: float
    low: float
    high: float
    readings: int = 1


class TemperatureHistory(_ApiModel):
    """A machine's temperature over a range, with the labelled storage range."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    machine_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    safe_min_c: float
    safe_max_c: float
    data: list[TemperaturePoint]
    count: int


class StockPoint(_ApiModel):
    at: datetime
    slot: int
    count: int


class StockHistory(_ApiModel):
    """Each slot's count over a range, as steps."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    machine_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    data: list[StockPoint]
    count: int


class Discrepancy(_ApiModel):
    """Two accounts of a slot that disagreed (``/machines/{id}/discrepancies``)."""

    id: int
    machine_id: str
    slot: int
    source: str
    expected: int
    observed: int
    detected_at: datetime
    device_time: datetime | None = None

