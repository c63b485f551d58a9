"""``nx-backend audit export``: the audit trail as CSV or JSON Lines, to stdout or a file."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from backend.audit.export import write
from backend.audit.query import AuditFilter, iter_audit
from backend.config import get_settings
from backend.db import SchemaOutOfDateError, check_schema, make_engine

app = typer.Typer(help="Read the audit trail (who changed what, when).", no_args_is_help=True)


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


def parse_when(text: str | None, option: str) -> datetime | None:
    """Parse an ISO 8601 date or time; one without an offset is taken as UTC."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option} {text!r} is not an ISO 8601 date or time "
                    "(e.g. 2026-12-01 or 2026-12-01T08:00:00+01:00)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


@app.command("export")
def export(
    since: Annotated[str | None, typer.Option(
        help="From this time on (ISO 8601; no offset means UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601).")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. alert.resolve.")
                      ] = None,
    object_type: Annotated[str | None, typer.Option(help="Only this kind of object.")] = None,
    object_id: Annotated[str | None, typer.Option(help="Only this object id.")] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or jsonl.")
                   ] = ExportFormat.JSONL,
    out: Annotated[Path | None, typer.Option(help="Write here (mode 0600), not stdout.")
                   ] = None,
) -> None:
    """Write the matching audit records, oldest first."""
    filters = AuditFilter(since=parse_when(since, "--since"), until=parse_when(until, "--until"),
                          actor=actor, action=action, object_type=object_type,
                          object_id=object_id)
    engine = make_engine(get_settings().database_url,
                         dead_link_s=get_settings().database_dead_link_s)
    try:
        check_schema(engine)
        with Session(engine) as session:
            records = iter_audit(session, filters=filters)
            if out is None:
                count = write(records, sys.stdout, fmt.value)
            else:
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                    count = write(records, handle, fmt.value)
    except SchemaOutOfDateError as exc:
        raise _fail(str(exc), code=2) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database: {exc.__class__.__name__}: {exc}") from None
    except OSError as exc:
        raise _fail(f"cannot write {out or 'standard output'}: {exc.strerror or exc}"
                    ) from None
    finally:
        engine.dispose()
    typer.echo(f"{count} audit record(s) exported{f' to {out}' if out else ''}", err=True)
