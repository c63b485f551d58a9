"""Create and revoke API tokens with their audit record in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlmodel import Session

from backend.audit.record import record_audit, snapshot
from backend.auth import tokens
from backend.auth.principal import Role
from backend.models import ApiToken

# Never the token or its hash: the prefix is enough to tell tokens apart.
TOKEN_FIELDS = ("role", "areas", "prefix", "expires_at")


def create_token(
    session: Session,
    *,
    actor: str,
    name: str,
    role: Role | str,
    areas: Iterable[str] = (),
    expires_in: timedelta | None = None,
    request_id: str | None = None,
) -> tuple[str, ApiToken]:
    """Create a token as ``actor``, audit it, commit; return the secret (shown once) and row."""
    secret = tokens.create_token(session, name=name, role=role, areas=areas,
                                 expires_in=expires_in, commit=False)
    row = tokens.get_live_token(session, name=name)
    if row is None:  # flushed just above in this transaction
        raise RuntimeError(f"token {name!r} vanished before its audit record")
    record_audit(session, actor=actor, action="token.create", object_type="token",
                 object_id=name, after=snapshot(row, TOKEN_FIELDS), request_id=request_id)
    session.commit()
    return secret, row


def revoke_token(
    session: Session, *, actor: str, name: str, request_id: str | None = None
) -> ApiToken:
    """Revoke the live token ``name`` as ``actor``, audit it, commit (TokenNotFoundError)."""
    row = tokens.revoke_token(session, name=name, commit=False)
    record_audit(session, actor=actor, action="token.revoke", object_type="token",
                 object_id=name, before={**snapshot(row, TOKEN_FIELDS), "revoked_at": None},
                 after={**snapshot(row, TOKEN_FIELDS), "revoked_at": row.revoked_at},
                 request_id=request_id)
    session.commit()
    return row
