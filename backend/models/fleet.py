"""Machines, their slots, the product catalogue and naloxone lots."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, ForeignKey, String
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

    id: str = Field(primary_key=True, max_length=63)
    active: bool = True
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
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


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
