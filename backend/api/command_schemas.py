"""Bodies of the command routes: the agent's own command models, plus a lifetime."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import BaseModel, Field, StringConstraints

from firmware_agent.wire import payloads

CommandIdIn = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A caller-chosen command id: what the agent accepts, narrowed to be safe in a URL."""
Lifetime = Annotated[int, Interval(ge=1, le=7 * 86_400)]
StateName = Literal["pending", "done", "failed", "expired"]


class _Delivery(BaseModel):
    """What every command body adds to the agent's model."""

    command_id: CommandIdIn | None = Field(
        default=None, description="Chosen by the caller, or a fresh one when omitted"
    )
    # Not ttl_s: authorize_vend has its own ttl_s (how long the vend is allowed).
    expires_in_s: Lifetime | None = Field(
        default=None,
        description="Seconds to keep (re)sending it before it expires"
        " (default NX_COMMANDS_LIFETIME_S)",
    )


# Each body is the agent's model (firmware_agent/wire/payloads.py) with the delivery
# fields: kinds and arguments are checked by the very models the agent parses with.
class PlanogramCreate(_Delivery, payloads.PlanogramCommand):
    """Set the slots' products and capacities."""


class LockCreate(_Delivery, payloads.LockCommand):
    """Lock the machine (no vends)."""


class UnlockCreate(_Delivery, payloads.UnlockCommand):
    """Unlock the machine."""


class StockRequestCreate(_Delivery, payloads.StockRequestCommand):
    """Ask for a fresh stock snapshot."""


class ConfigCreate(_Delivery, payloads.ConfigCommand):
    """Change the agent's settings (heartbeat interval)."""


class AuthorizeVendCreate(_Delivery, payloads.AuthorizeVendCommand):
    """Let one vend through on a slot within ttl_s seconds (gated machines)."""


CommandCreate = Annotated[
    PlanogramCreate | LockCreate | UnlockCreate | StockRequestCreate | ConfigCreate
    | AuthorizeVendCreate,
    Field(discriminator="kind"),
]


def to_wire(body: _Delivery, command_id: str) -> payloads.Command:
    """Return the command the agent will get, parsed as the agent parses it."""
    data = body.model_dump(mode="json", by_alias=True, exclude={"expires_in_s"})
    data["command_id"] = command_id
    return payloads.parse_command(json.dumps(data).encode("utf-8"))


class CommandResultPublic(BaseModel):
    ok: bool
    error: str | None
    detail: dict[str, Any]
    received_at: datetime


class CommandPublic(BaseModel):
    command_id: str
    machine_id: str
    kind: str
    state: StateName
    payload: dict[str, Any] = Field(description="The command as published on the cmd topic")
    created_by: str
    created_at: datetime
    expires_at: datetime
    send_count: int = Field(description="Copies published so far")
    last_sent_at: datetime | None
    completed_at: datetime | None = Field(description="When it became done, failed or expired")
    result: CommandResultPublic | None = Field(description="The machine's first answer")


class CommandsPage(BaseModel):
    data: list[CommandPublic]
    count: int
