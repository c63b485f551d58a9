"""The MQTT topic tree: ``nx/v1/machines/{id}/{channel}``."""

from __future__ import annotations

import re
from enum import StrEnum

PREFIX = "nx/v1/machines"

MACHINE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,62}$"
"""Machine ids double as MQTT usernames, so no wildcards, slashes or spaces."""

_MACHINE_ID_RE = re.compile(MACHINE_ID_PATTERN)


class Channel(StrEnum):
    """The last part of a machine topic."""

    STATUS = "status"
    EVENTS = "events"
    TELEMETRY = "telemetry"
    STOCK = "stock"
    CMD = "cmd"
    CMD_RESULT = "cmd/result"


class TopicError(ValueError):
    """A topic or machine id that is not part of the tree."""


def validate_machine_id(machine_id: str) -> str:
    """Return ``machine_id`` if it is a valid id, else raise ``TopicError``."""
    if not _MACHINE_ID_RE.match(machine_id):
        raise TopicError(f"invalid machine id {machine_id!r}")
    return machine_id


def machine_topic(machine_id: str, channel: Channel) -> str:
    """Return the topic of ``channel`` for ``machine_id``."""
    return f"{PREFIX}/{validate_machine_id(machine_id)}/{channel.value}"


def subscription(channel: Channel) -> str:
    """Return the wildcard filter for ``channel`` across the fleet."""
    return f"{PREFIX}/+/{channel.value}"


def parse_topic(topic: str) -> tuple[str, Channel]:
    """Split a machine topic into its machine id and channel."""
    prefix = PREFIX + "/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic {topic!r} is outside {PREFIX}")
    machine_id, _, rest = topic[len(prefix) :].partition("/")
    try:
        channel = Channel(rest)
    except ValueError as exc:
        raise TopicError(f"unknown channel in topic {topic!r}") from exc
    return validate_machine_id(machine_id), channel
