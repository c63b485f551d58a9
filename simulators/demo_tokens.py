"""The demo's API tokens: one per role, made in the demo's database and printed once."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from sqlmodel import Session

from backend.audit import record_audit
from backend.auth.principal import Role
from backend.auth.tokens import create_token

PURPOSE: Final[Mapping[Role, str]] = {
    Role.ADMIN: "everything: fleet, alerts, restock, hotspots, API tokens, audit trail",
    Role.OUTREACH: "fleet, machine alerts, restock plans and visits",
    Role.HEALTH: "hotspots and area alerts, the fleet read-only",
    Role.PROVISIONING: "register and revoke machines (no console pages)",
}
"""What each demo token is for, as the banner says it."""

class ConsoleSignIn(StrEnum):
    """``nx-sim demo --console-role``: whose token the console starts with, or none."""

    ADMIN = Role.ADMIN.value
    OUTREACH = Role.OUTREACH.value
    HEALTH = Role.HEALTH.value
    PROVISIONING = Role.PROVISIONING.value
    NONE = "none"

    def role(self) -> Role | None:
        """Return the role to sign in as, or None for the sign-in page."""
        return None if self is ConsoleSignIn.NONE else Role(self.value)


def token_name(role: Role) -> str:
    """Return the name of the demo's token for ``role`` (what `nx-backend token list` shows)."""
    return f"demo-{role.value}"


DEMO_ACTOR = "demo"
"""Who the audit trail says made the demo's tokens (as it registers the demo's machines)."""


def create_demo_tokens(session: Session) -> dict[Role, str]:
    """Create one token per role, audited, in one transaction; return them (shown only now)."""
    made: dict[Role, str] = {}
    for role in Role:
        name = token_name(role)
        made[role] = create_token(session, name=name, role=role, commit=False)
        record_audit(
            session, actor=DEMO_ACTOR, action="token.create", object_type="token",
            object_id=name, after={"role": role.value, "areas": []},
        )  # fmt: skip
    session.commit()
    return made


def token_lines(tokens: Mapping[Role, str]) -> list[str]:
    """Return the banner's lines about the tokens: each with its role and what it is for."""
    if not tokens:
        return []
    width = max(len(role.value) for role in tokens)
    lines = [
        "  API tokens, one per role (the console's sign-in page takes any of them;",
        "  curl takes -H 'Authorization: Bearer <token>'):",
    ]
    for role, secret in tokens.items():
        lines.append(f"    {role.value:<{width}}  {secret}  {PURPOSE[role]}")
    return lines


def console_line(console_url: str | None, console_role: Role | None) -> str:
    """Return the banner's line about the console and who it is signed in as."""
    if console_url is None:
        return "  console   (not started)"
    if console_role is None:
        return f"  console   {console_url}  (opens on its sign-in page)"
    return f"  console   {console_url}  (signed in as {console_role.value}; sign out to switch)"
