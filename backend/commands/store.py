"""The command table's rules: create, record a result, expire, pick what is due to be sent."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from backend.models import CommandResultRecord, CommandState, MachineCommand
from firmware_agent.wire import payloads

MIN_EXPIRY_S = 1
"""A copy with less time left than this is not sent: the broker could not hold it."""


class DuplicateCommandError(ValueError):
    """The machine already has a command with this id."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One copy of a command to publish now."""

    machine_id: str
    command_id: str
    payload: bytes
    expiry_s: int
    """Seconds the broker may keep it queued (MQTT v5 Message Expiry Interval)."""


def new_command_id() -> str:
    """Return a fresh command id (the agent accepts 1-64 characters)."""
    return uuid.uuid4().hex


def create_command(
    *,
    session: Session,
    machine_id: str,
    command: payloads.Command,
    lifetime_s: float,
    actor: str,
    now: datetime,
) -> MachineCommand:
    """Add a pending command due to be sent at once; the caller commits (and audits)."""
    taken = session.exec(
        select(col(MachineCommand.id)).where(
            col(MachineCommand.machine_id) == machine_id,
            col(MachineCommand.command_id) == command.command_id,
        )
    ).first()
    if taken is not None:
        raise DuplicateCommandError(
            f"machine {machine_id!r} already has a command {command.command_id!r}"
        )
    row = MachineCommand(
        machine_id=machine_id,
        command_id=command.command_id,
        kind=command.kind,
        payload=command.model_dump(mode="json", by_alias=True),
        state=CommandState.PENDING.value,
        created_by=actor,
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime_s),
        next_send_at=now,
    )
    session.add(row)
    session.flush()
    return row


def record_result(
    *, session: Session, machine_id: str, command_id: str, ok: bool, at: datetime
) -> bool:
    """Mark a pending (or just expired) command done or failed; say whether one changed.

    An answer after the expiry still wins: the machine did carry the command
    out, and the state should say what happened. The broker drops queued
    copies at the expiry, so this only happens to a copy already on its way.
    """
    state = CommandState.DONE if ok else CommandState.FAILED
    changed = session.execute(
        update(MachineCommand)
        .where(
            col(MachineCommand.machine_id) == machine_id,
            col(MachineCommand.command_id) == command_id,
            col(MachineCommand.state).in_([CommandState.PENDING.value,
                                           CommandState.EXPIRED.value]),
        )
        .values(state=state.value, completed_at=at)
    )
    return bool(changed.rowcount)  # type: ignore[attr-defined]


def expire_due(*, session: Session, now: datetime) -> int:
    """Mark pending commands past their expiry as expired; return how many."""
    changed = session.execute(
        update(MachineCommand)
        .where(
            col(MachineCommand.state) == CommandState.PENDING.value,
            col(MachineCommand.expires_at) <= now,
        )
        .values(state=CommandState.EXPIRED.value, completed_at=now)
    )
    return int(changed.rowcount)  # type: ignore[attr-defined]


PRUNE_BATCH = 10_000
"""Most rows of each table one upkeep run deletes: a long backlog goes over several runs."""


def prune_finished(*, session: Session, before: datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete finished commands completed, and results received, before ``before``.

    Return how many rows went. Pending commands are never touched, whatever their age.
    """
    commands = MachineCommand.__table__  # type: ignore[attr-defined]
    results = CommandResultRecord.__table__  # type: ignore[attr-defined]
    old_commands = (
        sa_select(commands.c.id)
        .where(commands.c.state != CommandState.PENDING.value, commands.c.completed_at < before)
        .order_by(commands.c.completed_at).limit(limit)
    )
    old_results = (
        sa_select(results.c.id).where(results.c.received_at < before)
        .order_by(results.c.received_at).limit(limit)
    )
    pruned = 0
    for table, oldest in ((commands, old_commands), (results, old_results)):
        gone = session.execute(delete(table).where(table.c.id.in_(oldest.scalar_subquery())))
        pruned += int(gone.rowcount)  # type: ignore[attr-defined]
    return pruned


def claim_due(
    *, session: Session, now: datetime, resend_after_s: float, limit: int
) -> list[Outgoing]:
    """Return pending commands due to be sent, and set their next send after the timeout.

    The caller commits before publishing, so a crash in between costs one
    timeout, never a lost command.
    """
    rows = session.exec(
        select(MachineCommand)
        .where(
            col(MachineCommand.state) == CommandState.PENDING.value,
            col(MachineCommand.next_send_at) <= now,
            col(MachineCommand.expires_at) > now,
        )
        .order_by(col(MachineCommand.next_send_at), col(MachineCommand.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    out: list[Outgoing] = []
    for row in rows:
        left = math.floor((row.expires_at - now).total_seconds())
        row.next_send_at = now + timedelta(seconds=resend_after_s)
        if left < MIN_EXPIRY_S:
            continue
        row.last_sent_at = now
        row.send_count += 1
        out.append(Outgoing(row.machine_id, row.command_id,
                            payloads.parse_command(_json(row)).to_bytes(), left))
    return out


def _json(row: MachineCommand) -> bytes:
    return json.dumps(row.payload).encode("utf-8")


def results_of(
    *, session: Session, rows: list[MachineCommand]
) -> dict[tuple[str, str], CommandResultRecord]:
    """Return the stored results of ``rows``, by (machine id, command id)."""
    if not rows:
        return {}
    found = session.exec(
        select(CommandResultRecord).where(
            col(CommandResultRecord.machine_id).in_({r.machine_id for r in rows}),
            col(CommandResultRecord.command_id).in_({r.command_id for r in rows}),
        )
    ).all()
    return {(r.machine_id, r.command_id): r for r in found}


def list_commands(
    *,
    session: Session,
    machine_id: str,
    state: CommandState | None,
    limit: int,
    offset: int,
) -> list[MachineCommand]:
    """Return a machine's commands, newest first."""
    query = select(MachineCommand).where(col(MachineCommand.machine_id) == machine_id)
    if state is not None:
        query = query.where(col(MachineCommand.state) == state.value)
    query = query.order_by(col(MachineCommand.id).desc()).offset(offset).limit(limit)
    return list(session.exec(query).all())


def get_command(*, session: Session, machine_id: str, command_id: str) -> MachineCommand | None:
    """Return one command of a machine, or None."""
    return session.exec(
        select(MachineCommand).where(
            col(MachineCommand.machine_id) == machine_id,
            col(MachineCommand.command_id) == command_id,
        )
    ).first()
