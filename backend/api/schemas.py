"""Response and request bodies of the API that are not table models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import BaseModel, Field, StringConstraints

from backend.models import AlertPublic
from firmware_agent.wire.topics import MACHINE_ID_PATTERN

# Integers are bounded where they enter, to what their column holds: past that
# the database driver raises (a 500) instead of the client hearing a 422.
INT32_MAX = 2**31 - 1
"""The largest value of an INTEGER column (PostgreSQL's is 32-bit)."""
INT64_MAX = 2**63 - 1
"""The largest value of a BIGINT column, a SQLite integer, an OFFSET."""

RowId = Annotated[int, Interval(ge=1, le=INT32_MAX)]
"""An autoincrement primary key (an INTEGER column)."""
Offset = Annotated[int, Interval(ge=0, le=INT64_MAX)]
"""How many rows a page skips."""
SlotNumber = Annotated[int, Interval(ge=1, le=99)]
"""A slot's number in its machine, as the slot table allows."""
StockCount = Annotated[int, Interval(ge=0, le=INT32_MAX)]
"""How many items a slot holds (an INTEGER column; a slot's capacity bounds it further)."""
MachineId = Annotated[str, StringConstraints(pattern=MACHINE_ID_PATTERN)]
"""A machine id as the agent and the broker accept it."""


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
    area: str | None = Field(description="Named area; tokens can be limited to areas")
    status: Literal["online", "offline", "unknown"]
    health: Literal["ok", "low_stock", "empty", "offline", "alarm"]
    last_seen: datetime | None
    firmware: str | None
    tags: list[str] = Field(
        default_factory=list, description="Labels set by admins (PUT /machines/{id}/tags)")
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
    count: int = Field(description="How many machines the caller may see in all")
    cursor: str = Field(
        "", description="The state this answer shows: send it back as `since` on the next poll")
    full: bool = Field(
        True, description="True: `data` is the listing (or a page of it); false: `data` holds "
        "only the machines changed since `since`, and `removed` those gone")
    removed: list[str] = Field(
        default_factory=list, description="Machines gone since `since` (deactivated, deleted, "
        "or out of the caller's areas)")


class AlertsPage(BaseModel):
    data: list[AlertPublic]
    count: int


class RestockVisitCreate(BaseModel):
    counts: dict[SlotNumber, StockCount] = Field(
        description="slot number -> count after loading (at most the slot's capacity)"
    )
    counted_before: dict[SlotNumber, StockCount] | None = Field(
        default=None, description="slot number -> count found before loading"
    )
    # No visited_by: the visit is recorded as the authenticated caller's (a
    # visited_by sent by an older client is ignored).


class RestockVisitPublic(BaseModel):
    id: int
    machine_id: str
    visited_at: datetime
    visited_by: str | None
    counts: dict[str, int]


class PrincipalPublic(BaseModel):
    """Who the caller is, as the API sees it."""

    name: str
    role: str
    areas: list[str]
    source: Literal["token", "oidc"]


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]*$")
    role: Literal["admin", "outreach", "health", "provisioning"]
    areas: list[str] = Field(default_factory=list, max_length=100)
    expires_in: str | None = Field(
        default=None, max_length=16, description="e.g. 90d, 12h, 2w; none: never expires"
    )


class TokenPublic(BaseModel):
    """A token as listed: never the token itself (only its hash is stored)."""

    name: str
    role: str
    prefix: str
    areas: list[str]
    state: Literal["live", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The bearer token: shown this once, never again")


class TokensPage(BaseModel):
    data: list[TokenPublic]
    count: int


class AuditRecordPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    request_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    data: list[AuditRecordPublic]
    count: int


class DeviceCreate(BaseModel):
    """A machine to register with a new broker password."""

    machine_id: str = Field(min_length=2, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1, max_length=120)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    site: str | None = Field(default=None, max_length=120)
    area: str | None = Field(default=None, min_length=1, max_length=64)


class DeviceCredential(BaseModel):
    """A machine's new broker credential: shown in this response only."""

    machine_id: str
    mqtt_username: str
    mqtt_password: str
    agent_config: str = Field(description="The agent's TOML configuration, credential included")


class DeviceRevoke(BaseModel):
    deactivate: bool = Field(default=False, description="Also mark the machine inactive")
    kick: bool = Field(default=True, description="End its live connection and stored session")


class DeviceRevoked(BaseModel):
    machine_id: str
    plugin_client_removed: bool
    password_removed: bool
    certificates_revoked: list[int]
    deactivated: bool
    session_ended: bool


class DeviceKicked(BaseModel):
    machine_id: str
    session_ended: bool
