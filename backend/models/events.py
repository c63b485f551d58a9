"""What the machines told us: events, snapshots, command results, dead letters, gaps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow


class DispenseEvent(SQLModel, table=True):
    """A vend attempt; ``result == "ok"`` is a dispense."""

    __tablename__ = "dispense_event"
    __table_args__ = (
        UniqueConstraint("machine_id", "boot_id", "seq", name="uq_dispense_key"),
        Index("ix_dispense_event_machine_seq", "machine_id", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    machine_id: str = Field(max_length=63, index=True)
    boot_id: int = Field(sa_type=BigInteger)
    seq: int = Field(sa_type=BigInteger)
    device_time: datetime = Field(sa_type=UTCDateTime, index=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    slot: int
    product: str | None = Field(default=None, max_length=48)
    result: str = Field(max_length=16)
    drop_confirmed: bool = False
    source: str = Field(default="nxlink", max_length=16)


class MachineEvent(SQLModel, table=True):
    """A non-vend event: door, fault, temperature, restock, keypad."""

    __tablename__ = "machine_event"
    __table_args__ = (
        UniqueConstraint("machine_id", "boot_id", "seq", name="uq_machine_event_key"),
        Index("ix_machine_event_machine_seq", "machine_id", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    machine_id: str = Field(max_length=63, index=True)
    boot_id: int = Field(sa_type=BigInteger)
    seq: int = Field(sa_type=BigInteger)
    kind: str = Field(max_length=16)
    device_time: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    slot: int | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class StockSnapshot(SQLModel, table=True):
    """A machine's full stock report as received (the ledger is in ``slot``)."""

    __tablename__ = "stock_snapshot"
    __table_args__ = (
        UniqueConstraint("machine_id", "boot_id", "revision", name="uq_stock_snapshot_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    machine_id: str = Field(max_length=63, index=True)
    boot_id: int = Field(sa_type=BigInteger)
    revision: int = Field(sa_type=BigInteger)
    source: str = Field(default="controller", max_length=16)
    device_time: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    slots: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )


class CommandResultRecord(SQLModel, table=True):
    """A machine's answer to a command."""

    __tablename__ = "command_result"
    # Commands are at-least-once (the agent acks one only after handling it), so a
    # result can come twice: the first is kept.
    __table_args__ = (
        UniqueConstraint("machine_id", "command_id", name="uq_command_result_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    machine_id: str = Field(max_length=63, index=True)
    command_id: str = Field(max_length=64, index=True)
    ok: bool
    error: str | None = Field(default=None, max_length=500)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeadLetter(SQLModel, table=True):
    """A message ingest could not accept, kept verbatim with the reason, once.

    ``digest`` (SHA-256 of topic and payload) makes a redelivery or a retried
    batch land on the row already there: a message is dead-lettered once,
    with the time it first arrived. How often rejections happen is the job of
    the ``nx_ingest_dead_letters`` and ``..._dropped`` counters. ``machine_id`` is the id in the
    topic (the publisher's own, by the broker's ACL), whether or not it is
    registered: the per-machine quota counts its malformed letters.
    """

    __tablename__ = "dead_letter"
    __table_args__ = (
        UniqueConstraint("digest", name="uq_dead_letter_digest"),
        Index("ix_dead_letter_machine_received", "machine_id", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    topic: str = Field(max_length=512)
    reason: str = Field(max_length=500)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    digest: str = Field(max_length=64)
    machine_id: str | None = Field(default=None, max_length=63)
    malformed: bool = True
    """False for a valid message with nowhere to go (an unknown machine's): not rationed."""


class DeadLetterDrops(SQLModel, table=True):
    """Malformed messages of one machine counted but not stored (over its dead-letter quota)."""

    __tablename__ = "dead_letter_drops"

    machine_id: str = Field(max_length=63, primary_key=True)
    dropped: int = Field(default=0, sa_type=BigInteger)
    dropped_bytes: int = Field(default=0, sa_type=BigInteger)
    first_dropped_at: datetime = Field(sa_type=UTCDateTime)
    last_dropped_at: datetime = Field(sa_type=UTCDateTime)


class DeliveryGap(SQLModel, table=True):
    """Seq numbers of a machine that never arrived within the gap timeout."""

    __tablename__ = "delivery_gap"
    __table_args__ = (UniqueConstraint("machine_id", "from_seq", name="uq_delivery_gap_start"),)

    id: int | None = Field(default=None, primary_key=True)
    machine_id: str = Field(max_length=63, index=True)
    from_seq: int = Field(sa_type=BigInteger)
    to_seq: int = Field(sa_type=BigInteger)
    detected_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    filled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
