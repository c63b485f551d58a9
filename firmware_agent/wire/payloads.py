"""JSON payloads on the MQTT topics, as pydantic models.

These models are the contract between the agent, the backend and the
simulators. Every event carries ``(machine_id, boot_id, seq)``, unique per
machine for ever, which is what makes delivery idempotent end to end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from firmware_agent.wire.topics import MACHINE_ID_PATTERN

SCHEMA_VERSION = 1

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)

MachineId = Annotated[str, Field(pattern=MACHINE_ID_PATTERN)]
SlotNumber = Annotated[int, Field(ge=1, le=99)]
ProductCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]
Count = Annotated[int, Field(ge=0, le=10_000)]


class PayloadError(ValueError):
    """Bytes that are not a valid payload; ``reason`` says why, for the dead-letter table."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_bytes(self) -> bytes:
        """Serialise to the UTF-8 JSON that goes on the wire."""
        return self.model_dump_json(by_alias=True).encode("utf-8")


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def make_event_id(machine_id: str, boot_id: int, seq: int) -> str:
    """Derive the event id from the triple that makes an event unique."""
    return f"{machine_id}:{boot_id}:{seq}"


# --- events --------------------------------------------------------------------------


class VendResult(StrEnum):
    """How a vend attempt ended, as the controller reports it."""

    OK = "ok"
    JAM = "jam"
    EMPTY = "empty"
    NO_DROP = "no-drop"
    REFUSED = "refused"
    """The controller would not start the vend: locked, or gated without an AUTH."""


class DoorState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class _EventBase(_Model):
    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema", ge=1)
    machine_id: MachineId
    boot_id: int = Field(ge=0)
    seq: int = Field(ge=0)
    device_time: AwareDatetime
    event_id: str = ""

    @model_validator(mode="after")
    def _check_event_id(self) -> _EventBase:
        expected = make_event_id(self.machine_id, self.boot_id, self.seq)
        if not self.event_id:
            object.__setattr__(self, "event_id", expected)
        elif self.event_id != expected:
            raise ValueError(f"event_id {self.event_id!r} does not match {expected!r}")
        return self


class VendEvent(_EventBase):
    """A vend attempt; a dispense is a vend whose result is ``ok``."""

    kind: Literal["vend"] = "vend"
    slot: SlotNumber
    product: ProductCode | None = None
    result: VendResult
    drop_confirmed: bool = False
    source: Literal["nxlink", "dex"] = "nxlink"


class RestockEvent(_EventBase):
    """A slot was set to ``count`` items by someone at the machine."""

    kind: Literal["restock"] = "restock"
    slot: SlotNumber
    count: Count


class DoorEvent(_EventBase):
    kind: Literal["door"] = "door"
    state: DoorState


class FaultEvent(_EventBase):
    """A controller fault, as a short code (never free text from the public)."""

    kind: Literal["fault"] = "fault"
    code: Annotated[str, Field(pattern=r"^[A-Z0-9_]{1,32}$")]
    slot: SlotNumber | None = None


class TemperatureEvent(_EventBase):
    """A temperature reading that crossed into or out of the storage range."""

    kind: Literal["temperature"] = "temperature"
    celsius: float = Field(ge=-60, le=120)
    excursion: bool


class KeyEvent(_EventBase):
    """Keypad input, e.g. an optional survey answer, as a coarse code only."""

    kind: Literal["key"] = "key"
    code: Annotated[str, Field(pattern=r"^[0-9A-D#*]{1,8}$")]


Event = Annotated[
    VendEvent | RestockEvent | DoorEvent | FaultEvent | TemperatureEvent | KeyEvent,
    Field(discriminator="kind"),
]
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


# --- state messages -------------------------------------------------------------------


class MachineState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Status(_Model):
    """Retained presence; the ``offline`` form is registered as the Last Will."""

    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema", ge=1)
    machine_id: MachineId
    boot_id: int = Field(ge=0)
    state: MachineState
    firmware: str | None = Field(default=None, max_length=64)


class SlotStock(_Model):
    """One slot in a snapshot; ``count`` is None while the agent has not been told it."""

    slot: SlotNumber
    product: ProductCode | None = None
    count: Count | None
    capacity: Count | None = None


class StockSnapshot(_Model):
    """Retained full stock of a machine, published after every change."""

    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema", ge=1)
    machine_id: MachineId
    boot_id: int = Field(ge=0)
    revision: int = Field(ge=0, description="ledger revision; higher is newer")
    device_time: AwareDatetime
    slots: tuple[SlotStock, ...]


class Telemetry(_Model):
    """Heartbeat: the machine's health at a glance."""

    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema", ge=1)
    machine_id: MachineId
    boot_id: int = Field(ge=0)
    device_time: AwareDatetime
    uptime_s: float = Field(ge=0)
    temperature_c: float | None = Field(default=None, ge=-60, le=120)
    door: DoorState | None = None
    power: Literal["mains", "battery"] | None = None
    signal_dbm: int | None = Field(default=None, ge=-150, le=0)
    firmware: str | None = Field(default=None, max_length=64)
    outbox_depth: int = Field(default=0, ge=0)
    link: dict[str, int] = Field(default_factory=dict)


# --- commands -------------------------------------------------------------------------


class SlotConfig(_Model):
    slot: SlotNumber
    product: ProductCode
    capacity: Count
    par: Count | None = None
    low_threshold: Count | None = None


class _CommandBase(_Model):
    command_id: Annotated[str, Field(min_length=1, max_length=64)]


class PlanogramCommand(_CommandBase):
    kind: Literal["planogram"] = "planogram"
    slots: tuple[SlotConfig, ...]


class LockCommand(_CommandBase):
    kind: Literal["lock"] = "lock"


class UnlockCommand(_CommandBase):
    kind: Literal["unlock"] = "unlock"


class StockRequestCommand(_CommandBase):
    kind: Literal["stock_request"] = "stock_request"


class ConfigCommand(_CommandBase):
    kind: Literal["config"] = "config"
    heartbeat_s: float | None = Field(default=None, ge=1, le=3600)


MAX_AUTHORIZE_TTL_S = 3600
"""Longest a vend authorisation may wait for its vend (nxlink ``AUTH``)."""


class AuthorizeVendCommand(_CommandBase):
    """Let one vend through on ``slot`` within ``ttl_s`` seconds (machines that gate vends)."""

    kind: Literal["authorize_vend"] = "authorize_vend"
    slot: SlotNumber
    ttl_s: int = Field(ge=1, le=MAX_AUTHORIZE_TTL_S)


Command = Annotated[
    PlanogramCommand | LockCommand | UnlockCommand | StockRequestCommand | ConfigCommand
    | AuthorizeVendCommand,
    Field(discriminator="kind"),
]
_COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


class CommandResult(_Model):
    command_id: Annotated[str, Field(min_length=1, max_length=64)]
    ok: bool
    error: str | None = Field(default=None, max_length=500)
    detail: dict[str, Any] = Field(default_factory=dict)


# --- parsing --------------------------------------------------------------------------


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "payload"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _validate_json(adapter: TypeAdapter[_T], raw: bytes) -> _T:
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        raise PayloadError(_reason(exc)) from exc


def parse_event(raw: bytes) -> Event:
    """Validate an ``events`` payload; raise ``PayloadError`` with a reason."""
    return _validate_json(_EVENT_ADAPTER, raw)


def parse_command(raw: bytes) -> Command:
    """Validate a ``cmd`` payload; raise ``PayloadError`` with a reason."""
    return _validate_json(_COMMAND_ADAPTER, raw)


def parse_model(model: type[_M], raw: bytes) -> _M:
    """Validate a payload of a single model type (status, stock, telemetry, result)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise PayloadError(_reason(exc)) from exc
