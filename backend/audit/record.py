"""Append an audit record to the caller's session, in the same transaction as the change."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import to_jsonable_python
from sqlmodel import Session

from backend.models import AuditRecord, utcnow

CLI_PREFIX = "cli:"
MAX_ACTOR = 128
MAX_OBJECT_ID = 128


def _jsonable(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    # Datetimes, enums and the like become the JSON the API would show.
    converted: dict[str, Any] = to_jsonable_python(dict(values))
    return converted


def snapshot(obj: object, fields: Iterable[str]) -> dict[str, Any]:
    """Return ``fields`` of ``obj`` as a dict (the "before" or "after" of a change)."""
    return {name: getattr(obj, name) for name in fields}


def record_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> AuditRecord:
    """Add an audit record to ``session``; the caller's commit writes it with the change."""
    if not actor:
        raise ValueError("an audit record needs an actor")
    record = AuditRecord(
        at=utcnow(),
        actor=actor[:MAX_ACTOR],
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:MAX_OBJECT_ID],
        request_id=request_id,
        before=_jsonable(before),
        after=_jsonable(after),
    )
    session.add(record)
    return record


def cli_actor() -> str:
    """Return the actor of a command-line write: ``cli:`` and the operating-system user."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = f"uid{os.getuid()}"
    return f"{CLI_PREFIX}{user}"
