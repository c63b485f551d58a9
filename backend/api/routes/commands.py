"""Commands to one machine: send one (published until answered or expired), list them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlmodel import Session

from backend import crud
from backend.api.command_schemas import (
    CommandCreate,
    CommandIdIn,
    CommandPublic,
    CommandResultPublic,
    CommandsPage,
    StateName,
    to_wire,
)
from backend.api.deps import (
    PrincipalDep,
    RequestIdDep,
    SessionDep,
    SettingsDep,
    WriteSessionDep,
)
from backend.api.problems import problem_responses
from backend.api.schemas import MachineId, Offset
from backend.audit import record_audit
from backend.auth.principal import Principal
from backend.commands import store
from backend.models import CommandResultRecord, CommandState, MachineCommand, utcnow

router = APIRouter(prefix="/machines/{machine_id}/commands", tags=["commands"])


def _visible(session: Session, machine_id: str, principal: Principal) -> None:
    # Outside the caller's areas a machine does not exist (404), as everywhere.
    if crud.get_machine(session=session, machine_id=machine_id, principal=principal) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"machine {machine_id!r} not found")


def _public(row: MachineCommand, result: CommandResultRecord | None) -> CommandPublic:
    return CommandPublic(
        command_id=row.command_id,
        machine_id=row.machine_id,
        kind=row.kind,
        state=CommandState(row.state).value,
        payload=row.payload,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        send_count=row.send_count,
        last_sent_at=row.last_sent_at,
        completed_at=row.completed_at,
        result=None if result is None else CommandResultPublic(
            ok=result.ok, error=result.error, detail=result.detail,
            received_at=result.received_at,
        ),
    )


@router.post("", response_model=CommandPublic, status_code=status.HTTP_201_CREATED,
             responses=problem_responses(404, 409, 422))
def send_command(
    machine_id: MachineId,
    body: CommandCreate,
    request: Request,
    session: WriteSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> CommandPublic:
    """Store a command and send it to the machine until it answers or the command expires."""
    machine = crud.get_machine(session=session, machine_id=machine_id, principal=principal)
    if machine is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"machine {machine_id!r} not found")
    if not machine.active:
        raise HTTPException(status.HTTP_409_CONFLICT, f"machine {machine_id!r} is deactivated")
    lifetime = settings.commands_lifetime_s if body.expires_in_s is None else body.expires_in_s
    if lifetime > settings.commands_max_lifetime_s:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"expires_in_s is at most {settings.commands_max_lifetime_s}")
    command = to_wire(body, body.command_id or store.new_command_id())
    try:
        row = store.create_command(session=session, machine_id=machine_id, command=command,
                                   lifetime_s=lifetime, actor=principal.name, now=utcnow())
    except store.DuplicateCommandError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    record_audit(session, actor=principal.name, action="command.send",
                 object_type="machine_command", object_id=f"{machine_id}/{row.command_id}",
                 after={"machine_id": machine_id, "payload": row.payload,
                        "expires_at": row.expires_at},
                 request_id=request_id)
    session.commit()
    resender = getattr(request.app.state, "command_resender", None)
    if resender is not None:
        resender.wake()
    return _public(row, None)


@router.get("", response_model=CommandsPage, responses=problem_responses(404))
def list_commands(
    machine_id: MachineId,
    session: SessionDep,
    principal: PrincipalDep,
    state: Annotated[StateName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[Offset, Query()] = 0,
) -> CommandsPage:
    """List a machine's commands, newest first, with their state and the machine's answer."""
    _visible(session, machine_id, principal)
    rows = store.list_commands(session=session, machine_id=machine_id,
                               state=None if state is None else CommandState(state),
                               limit=limit, offset=offset)
    results = store.results_of(session=session, rows=rows)
    return CommandsPage(
        data=[_public(r, results.get((r.machine_id, r.command_id))) for r in rows],
        count=len(rows),
    )


@router.get("/{command_id}", response_model=CommandPublic, responses=problem_responses(404))
def get_command(
    machine_id: MachineId, command_id: CommandIdIn, session: SessionDep, principal: PrincipalDep
) -> CommandPublic:
    """Show one command with its state and the machine's answer."""
    _visible(session, machine_id, principal)
    row = store.get_command(session=session, machine_id=machine_id, command_id=command_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no command {command_id!r}")
    results = store.results_of(session=session, rows=[row])
    return _public(row, results.get((row.machine_id, row.command_id)))
