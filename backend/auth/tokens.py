"""API tokens: create (the secret is shown once), list, revoke, authenticate.

A token is 32 random bytes (256 bits) behind a recognisable ``nxt_`` prefix.
Only its plain SHA-256 is stored: with that much entropy a hash cannot be
reversed by guessing, so a slow password hash or a server-side key would add
cost per request (or a secret to share between replicas) and no safety.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.auth.principal import Principal, Role
from backend.models.auth import ApiToken
from backend.models.types import utcnow

log = logging.getLogger(__name__)

TOKEN_PREFIX = "nxt_"  # noqa: S105 - a marker, not a secret
SHOWN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 6
"""How much of a token `token list` shows: enough to tell tokens apart, far too little to use."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}$")
_AREA = re.compile(r"^[^\x00-\x1f]{1,64}$")
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class TokenError(ValueError):
    """A token cannot be created or revoked as asked."""


class TokenNotFoundError(TokenError, LookupError):
    """No live token has that name."""


class TokenExistsError(TokenError):
    """A live token already has that name."""


def hash_token(secret: str) -> str:
    """Return the hex SHA-256 under which a token is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_duration(text: str) -> timedelta:
    """Parse ``90d``, ``12h``, ``30m``, ``45s`` or ``2w`` into a duration."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise TokenError(f"not a duration: {text!r} (use e.g. 90d, 12h, 30m, 2w)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def validate_name(name: str) -> str:
    """Return ``name`` if it can name a token, else raise TokenError."""
    if not _NAME.match(name):
        raise TokenError(
            f"bad token name {name!r}: 1-64 letters, digits or . _ @ : - (not first)"
        )
    return name


def _areas(areas: Iterable[str]) -> list[str]:
    out = sorted({a.strip() for a in areas})
    for area in out:
        if not _AREA.match(area):
            raise TokenError(f"bad area name {area!r}: 1-64 printable characters")
    return out


def create_token(
    session: Session,
    *,
    name: str,
    role: Role | str,
    areas: Iterable[str] = (),
    expires_in: timedelta | None = None,
    commit: bool = True,
) -> str:
    """Store a new token's hash and return the token itself (the only time it exists).

    With ``commit=False`` the row is only flushed, so that the caller can write
    more (an audit record) in the same transaction.
    """
    validate_name(name)
    try:
        role = Role(role)
    except ValueError:
        raise TokenError(f"unknown role {role!r}: one of {', '.join(Role)}") from None
    if expires_in is not None and expires_in <= timedelta(0):
        raise TokenError("a token must expire in the future")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(
        name=name,
        role=role.value,
        prefix=secret[:SHOWN_PREFIX_LENGTH],
        token_hash=hash_token(secret),
        areas=_areas(areas),
        created_at=now,
        expires_at=None if expires_in is None else now + expires_in,
    )
    try:
        # The unique index on live names decides; no read first, because on
        # SQLite a transaction that reads and then writes can fail at once
        # instead of waiting for the lock. A savepoint, so that a taken name
        # undoes only this row, not what the caller wrote before.
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise TokenExistsError(f"a live token named {name!r} exists; revoke it first") from None
    if commit:
        session.commit()
    log.info("token %s created (role %s)", name, role.value)
    return secret


def list_tokens(session: Session, *, include_revoked: bool = False) -> list[ApiToken]:
    """Return the tokens by name (never their secrets: only hashes are stored)."""
    query = select(ApiToken)
    if not include_revoked:
        query = query.where(col(ApiToken.revoked_at).is_(None))
    return list(session.exec(query.order_by(col(ApiToken.name), col(ApiToken.id))).all())


def get_live_token(session: Session, *, name: str) -> ApiToken | None:
    """Return the unrevoked token called ``name``, if any."""
    return session.exec(
        select(ApiToken).where(col(ApiToken.name) == name, col(ApiToken.revoked_at).is_(None))
    ).first()


def revoke_token(session: Session, *, name: str, commit: bool = True) -> ApiToken:
    """Revoke the live token called ``name``; it is refused from the next request on."""
    now = utcnow()
    # Write first (see create_token); the row is read back afterwards.
    done = session.execute(
        update(ApiToken)
        .where(col(ApiToken.name) == name, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=now)
        .returning(col(ApiToken.id))
    ).first()
    if done is None:
        raise TokenNotFoundError(f"no live token named {name!r}")
    row = session.get(ApiToken, done[0], populate_existing=True)
    if row is None:  # pragma: no cover - just updated in this transaction
        raise TokenNotFoundError(f"no live token named {name!r}")
    if commit:
        session.commit()
    log.info("token %s revoked", name)
    return row


def token_state(row: ApiToken, now: datetime) -> str:
    """Say whether a token is ``live``, ``expired`` or ``revoked``."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "live"


def authenticate_token(
    session: Session, secret: str, *, touch_after_s: float, now: datetime | None = None
) -> Principal | None:
    """Return the principal of a live token, or None (unknown, revoked or expired).

    Reads the database on every call, so a revocation is seen at once by every
    replica. ``last_used_at`` is written at most every ``touch_after_s`` seconds
    per token, so that a busy client does not turn each read into a write.
    """
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
        return None
    now = now or utcnow()
    digest = hash_token(secret)
    row = session.exec(select(ApiToken).where(col(ApiToken.token_hash) == digest)).first()
    if row is None or token_state(row, now) != "live":
        return None
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() >= touch_after_s:
        _touch(session, row, now, touch_after_s)
    return Principal(
        name=row.name, role=Role(row.role), areas=frozenset(row.areas), source="token"
    )


def _touch(session: Session, row: ApiToken, now: datetime, touch_after_s: float) -> None:
    # Conditional, so that replicas racing on one token write once; a failure
    # (a locked SQLite file) costs only the timestamp, never the request.
    cutoff = now - timedelta(seconds=touch_after_s)
    try:
        # End the read first: on SQLite a read transaction that then writes can
        # fail at once (busy snapshot), while a fresh write waits for the lock.
        session.commit()
        session.execute(
            update(ApiToken)
            .where(
                col(ApiToken.id) == row.id,
                or_(col(ApiToken.last_used_at).is_(None), col(ApiToken.last_used_at) <= cutoff),
            )
            .values(last_used_at=now)
        )
        session.commit()
    except Exception:  # see above: any failure
        session.rollback()
        log.warning("could not record the use of token %s", row.name, exc_info=True)
