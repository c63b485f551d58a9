"""How one notification reaches one destination: a sender per channel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class DeliveryError(Exception):
    """A delivery attempt failed; the message is stored as the delivery's last error."""


@dataclass(frozen=True)
class Destination:
    """What a sender needs of a route."""

    route_id: int
    name: str
    channel: str
    target: str
    secret: str | None
    timeout_s: float


@dataclass(frozen=True)
class Message:
    """One delivery: its stable id and its body."""

    delivery_id: str
    event: str
    payload: dict[str, Any]


Sender = Callable[[Destination, Message], None]
"""Deliver a message or raise DeliveryError."""
