"""Turn an MQTT message into a validated payload or a reason to dead-letter it (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel, TopicError, parse_topic

MAX_PAYLOAD_BYTES = 64 * 1024
"""Anything bigger is not one of our messages (and would bloat the dead letters)."""
MAX_COUNTER = 2**63 - 1
"""Counters are stored as 64-bit integers; the wire contract sets no upper bound."""
COUNTER_FIELDS = ("boot_id", "seq", "revision", "outbox_depth")

Payload = (
    payloads.VendEvent
    | payloads.RestockEvent
    | payloads.DoorEvent
    | payloads.FaultEvent
    | payloads.TemperatureEvent
    | payloads.KeyEvent
    | payloads.Status
    | payloads.StockSnapshot
    | payloads.Telemetry
    | payloads.CommandResult
)


@dataclass(frozen=True)
class Message:
    """One message as it came off the broker."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True)
class Accepted:
    """A message whose topic and payload are valid."""

    message: Message
    machine_id: str
    channel: Channel
    body: Payload


@dataclass(frozen=True)
class Rejected:
    """A message to dead-letter, with the reason.

    ``malformed`` is false for a valid message ingest cannot place (an unknown
    machine's): only malformed ones count against a machine's dead-letter quota.
    """

    message: Message
    reason: str
    malformed: bool = True


def _parse_body(channel: Channel, raw: bytes) -> Payload:
    match channel:
        case Channel.EVENTS:
            return payloads.parse_event(raw)
        case Channel.STATUS:
            return payloads.parse_model(payloads.Status, raw)
        case Channel.STOCK:
            return payloads.parse_model(payloads.StockSnapshot, raw)
        case Channel.TELEMETRY:
            return payloads.parse_model(payloads.Telemetry, raw)
        case Channel.CMD_RESULT:
            return payloads.parse_model(payloads.CommandResult, raw)
        case _:
            raise payloads.PayloadError(f"ingest does not read the {channel.value} channel")


def _plain_json(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def classify(message: Message) -> Accepted | Rejected:
    """Validate ``message``; never raises for bad input."""
    try:
        machine_id, channel = parse_topic(message.topic)
    except TopicError as exc:
        return Rejected(message, f"topic: {exc}")
    if len(message.payload) > MAX_PAYLOAD_BYTES:
        return Rejected(message, f"payload: {len(message.payload)} bytes is over the limit")
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail a batch.
    if b"\\u0000" in message.payload or b"\x00" in message.payload:
        return Rejected(message, "payload: contains a NUL character")
    try:
        body = _parse_body(channel, message.payload)
    except payloads.PayloadError as exc:
        return Rejected(message, exc.reason[:480])
    if isinstance(body, payloads.CommandResult) and not _plain_json(body.detail):
        return Rejected(message, "detail: NaN or Infinity is not JSON")
    # Look up only the fields the model has: a miss goes through pydantic's
    # __getattr__ and an exception, which was a tenth of the writer's time.
    fields = type(body).model_fields
    for name in COUNTER_FIELDS:
        if name in fields and getattr(body, name) > MAX_COUNTER:
            return Rejected(message, f"{name}: does not fit in 64 bits")
    claimed = getattr(body, "machine_id", machine_id) if "machine_id" in fields else machine_id
    if claimed != machine_id:
        return Rejected(message, f"payload machine_id {claimed!r} does not match the topic")
    return Accepted(message, machine_id, channel, body)
