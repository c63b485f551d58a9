"""Machines, their slots, the product catalogue and naloxone lots."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from annotated_types import Interval
from pydantic import ConfigDict, StringConstraints
from sqlalchemy import JSON, BigInteger, Column, ForeignKey, String, UniqueConstraint, text, true
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow


class ProductBase(SQLModel):
    code: str = Field(primary_key=True, max_length=48)
    name: str = Field(max_length=120)
    category: str = Field(max_length=32)
    is_naloxone: bool = False


class Product(ProductBase, table=True):
    """One kind of item a slot can hold (seeded by a migration)."""


class MachineBase(SQLModel):
    name: str = Field(max_length=120)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    site: str | None = Field(default=None, max_length=120)
    # The named area (neighbourhood, district) a token can be limited to.
    area: str | None = Field(default=None, max_length=64, index=True)


class Machine(MachineBase, table=True):
    """A vending machine; its id is also its MQTT username."""

    __table_args__ = (UniqueConstraint("public_id", name="uq_machine_public_id"),)

    id: str = Field(primary_key=True, max_length=63)
    active: bool = True
    # The public locator feed (backend/public/): a machine is listed there once
    # it has a public name and while it is active and in service. The public id
    # is random, given on first publication and never changed, so community maps
    # keep a stable key without learning the machine id (its MQTT username).
    public_id: str | None = Field(default=None, max_length=32)
    public_name: str | None = Field(default=None, max_length=120)
    opening_hours: str | None = Field(default=None, max_length=200)
    in_service: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    status: str = Field(default="unknown", max_length=16)
    # What set the status: the retained status topic ("status") or the
    # missed-heartbeat check ("timeout"); only the latter is undone by telemetry.
    status_source: str | None = Field(default=None, max_length=16)
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    boot_id: int | None = Field(default=None, sa_type=BigInteger)
    firmware: str | None = Field(default=None, max_length=64)
    temperature_c: float | None = None
    door: str | None = Field(default=None, max_length=16)
    # The (boot_id, seq) of the last door and temperature events applied: one that
    # arrives after a newer one (another worker was faster) changes neither the
    # state nor the alert.
    door_event_boot_id: int | None = Field(default=None, sa_type=BigInteger)
    door_event_seq: int | None = Field(default=None, sa_type=BigInteger)
    temperature_event_boot_id: int | None = Field(default=None, sa_type=BigInteger)
    temperature_event_seq: int | None = Field(default=None, sa_type=BigInteger)
    outbox_depth: int | None = Field(default=None, sa_type=BigInteger)
    # Stock snapshots older than this device time are stale (see stock.py).
    stock_as_of: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Every seq up to the watermark is either stored or recorded as a delivery
    # gap; max_seq lets the gap scan skip machines with nothing new.
    seq_watermark: int | None = Field(default=None, sa_type=BigInteger)
    max_seq: int | None = Field(default=None, sa_type=BigInteger)
    # Short labels set by admins (e.g. "mobile", "pilot"); notification routes
    # may take only alerts of machines with one of their tags.
    tags: list[str] = Field(default_factory=list, sa_column=Column(
        JSON, nullable=False, server_default=text("'[]'")))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# One line of printable text: it is shown to the public as it is. No C0 or C1
# control characters, and no Unicode line or paragraph separators.
_PublicText = Annotated[str, StringConstraints(
    strip_whitespace=True, min_length=1, pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$")]


MachineTag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
"""A machine tag: 1-32 lower-case letters, digits, '-' or '_'."""


class MachineTags(SQLModel):
    """A machine's whole set of tags (replaces the old set)."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    tags: list[MachineTag] = Field(max_length=20)


class MachineTagsPublic(SQLModel):
    machine_id: str
    tags: list[str]


class MachineListingUpdate(SQLModel):
    """A change to a machine's public listing; fields left unset stay as they are.

    ``public_name=None`` unlists the machine, ``opening_hours=None`` clears them,
    ``in_service=False`` takes it off the public feed until it is back in service.
    """

    # A misspelt field must be refused, not ignored: it would change nothing silently.
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    public_name: Annotated[_PublicText, StringConstraints(max_length=120)] | None = None
    opening_hours: Annotated[_PublicText, StringConstraints(max_length=200)] | None = None
    in_service: bool | None = None


class MachineUpdate(SQLModel):
    """A change to a machine's name, site or place; fields left unset stay as they are.

    ``"site": null`` clears the site; name, latitude and longitude cannot be cleared.
    What the machine itself must know (planogram, par, thresholds) goes as a command.
    """

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    name: Annotated[_PublicText, StringConstraints(max_length=120)] | None = None
    site: Annotated[_PublicText, StringConstraints(max_length=120)] | None = None
    lat: Annotated[float, Interval(ge=-90, le=90)] | None = None
    lon: Annotated[float, Interval(ge=-180, le=180)] | None = None


class SlotBase(SQLModel):
    product: str | None = Field(default=None, max_length=48)
    capacity: int = Field(default=0, ge=0)
    count: int = Field(default=0, ge=0)
    par: int | None = Field(default=None, ge=0)
    low_threshold: int | None = Field(default=None, ge=0)


class Slot(SlotBase, table=True):
    """One selection of a machine and what the books say it holds."""

    machine_id: str = Field(
        sa_column=Column(String(63), ForeignKey("machine.id", ondelete="CASCADE"), primary_key=True)
    )
    slot: int = Field(primary_key=True, ge=1, le=99)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NaloxoneLot(SQLModel, table=True):
    """A manufacturer lot of naloxone loaded into a machine, with its expiry."""

    __tablename__ = "naloxone_lot"

    id: int | None = Field(default=None, primary_key=True)
    product: str = Field(max_length=48, foreign_key="product.code")
    lot_number: str = Field(max_length=40)
    expiry: date
    machine_id: str | None = Field(default=None, max_length=63, index=True)
    slot: int | None = None
    quantity: int = Field(default=0, ge=0)
    loaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The visit that loaded it; when its last item left the slot (vended or removed).
    visit_id: int | None = None
    emptied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
