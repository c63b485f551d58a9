"""``nx-backend public ...``: what the public locator feed shows of each machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from backend import crud
from backend.audit import cli_actor
from backend.config import get_settings
from backend.db import SchemaOutOfDateError, check_schema, make_engine
from backend.models import Machine, MachineListingUpdate

app = typer.Typer(help="Set what the public feed (/public/v1) shows of each machine.",
                  no_args_is_help=True)

MachineId = Annotated[str, typer.Argument(help="The machine's id (its MQTT username).")]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


@contextmanager
def _session() -> Iterator[Session]:
    settings = get_settings()
    engine = make_engine(settings.database_url, immediate=True,  # it writes beside ingest
                         dead_link_s=settings.database_dead_link_s)
    try:
        check_schema(engine)
        with Session(engine) as session:
            yield session
    except SchemaOutOfDateError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database failed: {exc.__class__.__name__}: {exc}") from None
    finally:
        engine.dispose()


def _update(machine_id: str, fields: dict[str, Any]) -> None:
    try:
        changes = MachineListingUpdate.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise _fail(problems) from None
    with _session() as session:
        try:
            machine = crud.update_public_listing(session=session, machine_id=machine_id,
                                                 changes=changes, actor=cli_actor())
        except crud.NotFoundError as exc:
            raise _fail(str(exc)) from None
        listed = machine.active and machine.in_service and machine.public_name is not None
        typer.echo(f"{machine_id}: {'listed' if listed else 'not listed'} "
                   f"(public id {machine.public_id or '-'})", err=True)


@app.command("set")
def set_command(
    machine_id: MachineId,
    name: Annotated[str | None, typer.Option(
        "--name", help="Public name; setting it lists the machine.")] = None,
    hours: Annotated[str | None, typer.Option(
        "--hours", help="Opening hours as free text, e.g. '24/7' or 'Mo-Fr 08:00-20:00'.")
    ] = None,
    no_hours: Annotated[bool, typer.Option("--no-hours", help="Clear the opening hours.")
                        ] = False,
    in_service: Annotated[bool | None, typer.Option(
        "--in-service/--out-of-service",
        help="Out of service: off the public feed (repair, move) until back in service.")
    ] = None,
) -> None:
    """Change a machine's public name, opening hours or service state."""
    if hours is not None and no_hours:
        raise _fail("give --hours or --no-hours, not both")
    fields: dict[str, Any] = {}
    if name is not None:
        fields["public_name"] = name
    if hours is not None or no_hours:
        fields["opening_hours"] = hours
    if in_service is not None:
        fields["in_service"] = in_service
    if not fields:
        raise _fail("nothing to change: give --name, --hours, --no-hours or --out-of-service")
    _update(machine_id, fields)


@app.command("unlist")
def unlist_command(machine_id: MachineId) -> None:
    """Remove a machine from the public feed (its public id is kept for a later listing)."""
    _update(machine_id, {"public_name": None})


@app.command("list")
def list_command() -> None:
    """Print every machine with a public name, tab-separated, with its private id."""
    with _session() as session:
        machines = session.exec(
            select(Machine).where(col(Machine.public_name).is_not(None)).order_by(col(Machine.id))
        ).all()
        typer.echo("machine_id\tpublic_id\tlisted\tpublic_name\topening_hours")
        for m in machines:
            listed = "yes" if m.active and m.in_service else "no"
            typer.echo(f"{m.id}\t{m.public_id}\t{listed}\t{m.public_name}\t"
                       f"{m.opening_hours or ''}")
