"""``nx-backend token ...``: create, list and revoke API tokens.

``create`` prints the token alone on stdout (so it can be captured) and never
again; every message goes to stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from backend.audit import cli_actor
from backend.audit import tokens as audited_tokens
from backend.auth import tokens
from backend.auth.principal import Role
from backend.config import get_settings
from backend.db import SchemaOutOfDateError, check_schema, make_engine
from backend.models import utcnow

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine(get_settings().database_url, immediate=True,
                         dead_link_s=get_settings().database_dead_link_s)
    try:
        check_schema(engine)
        with Session(engine, expire_on_commit=False) as session:
            yield session
    except SchemaOutOfDateError as exc:
        raise _fail(str(exc), code=2) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database: {exc.__class__.__name__}: {exc}") from None
    finally:
        engine.dispose()


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses it (shown as the actor).")],
    role: Annotated[Role, typer.Option("--role", help="What it may do.")],
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="e.g. 90d, 12h, 2w (default: never).")
    ] = None,
    area: Annotated[
        list[str] | None, typer.Option("--area", help="Limit to this named area (repeatable).")
    ] = None,
) -> None:
    """Create a token and print it (alone, on stdout) this once: store it now."""
    try:
        duration = None if expires_in is None else tokens.parse_duration(expires_in)
        tokens.validate_name(name)
    except tokens.TokenError as exc:
        raise _fail(str(exc)) from None
    with _session() as session:
        try:
            secret, _ = audited_tokens.create_token(
                session, actor=cli_actor(), name=name, role=role, areas=area or (),
                expires_in=duration,
            )
        except tokens.TokenError as exc:
            raise _fail(str(exc)) from None
    typer.echo(secret)
    limits = f", areas {', '.join(sorted(set(area)))}" if area else ""
    until = f", expires in {expires_in}" if expires_in else ", never expires"
    typer.echo(
        f"token {name!r} created (role {role.value}{limits}{until}); it is shown only this once",
        err=True,
    )


@app.command("list")
def list_command(
    all_: Annotated[bool, typer.Option("--all", help="Also list revoked tokens.")] = False,
) -> None:
    """List tokens: name, role, prefix, areas, created, last used, expires (never the token)."""
    with _session() as session:
        rows = tokens.list_tokens(session, include_revoked=all_)
    now = utcnow()
    header = ("NAME", "ROLE", "PREFIX", "STATE", "AREAS", "CREATED", "LAST USED", "EXPIRES")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.name,
                row.role,
                row.prefix + "...",
                tokens.token_state(row, now),
                ",".join(row.areas) or "-",
                _when(row.created_at),
                _when(row.last_used_at),
                _when(row.expires_at),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _when(value: object) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}Z"


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token: every API process refuses it from its next request."""
    with _session() as session:
        try:
            audited_tokens.revoke_token(session, actor=cli_actor(), name=name)
        except tokens.TokenNotFoundError as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"token {name!r} revoked", err=True)
