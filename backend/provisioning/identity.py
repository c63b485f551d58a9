"""Which names may become device identities (MQTT usernames and certificate CNs)."""

from __future__ import annotations

from firmware_agent.wire.topics import TopicError, validate_machine_id

SERVICE_PREFIX = "nx-"
"""Service accounts (``nx-backend``, ``nx-admin``) start with this; machines never do.

The ACL grants by username, and a certificate's CN becomes the username, so a
machine credential named like a service would inherit the service's rights.
"""


class IdentityError(ValueError):
    """A name that cannot be given a device credential."""


def validate_device_id(machine_id: str) -> str:
    """Return ``machine_id`` if it may hold a device credential, else raise ``IdentityError``."""
    try:
        validate_machine_id(machine_id)
    except TopicError as exc:
        raise IdentityError(
            f"invalid machine id {machine_id!r}: use 2-63 lower-case letters, digits, '-' or '_'"
        ) from exc
    if machine_id.startswith(SERVICE_PREFIX):
        raise IdentityError(
            f"machine id {machine_id!r} starts with {SERVICE_PREFIX!r}, which is kept for services"
        )
    return machine_id
