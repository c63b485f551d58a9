"""``nx-backend areas ...``: load a deployment's named areas (neighbourhood polygons)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from backend.areas.features import parse_feature_collection
from backend.areas.store import replace_areas, stored_shapes

app = typer.Typer(help="Named areas (neighbourhoods) machines are grouped by.",
                  no_args_is_help=True)

MAX_FILE_BYTES = 20_000_000


def _fail(message: str) -> typer.Exit:
    """Print an error for a person and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@app.command("load")
def load_command(
    file: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection; properties.name "
                                              "names each Polygon or MultiPolygon.")],
) -> None:
    """Replace the named areas with those in FILE and re-place every machine."""
    from backend.audit import cli_actor
    from backend.config import get_settings
    from backend.db import check_schema, make_engine, session_scope

    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise _fail(f"{file} is larger than {MAX_FILE_BYTES} bytes")
        shapes = parse_feature_collection(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {file}: {exc}") from None
    except ValueError as exc:  # json.JSONDecodeError is one
        raise _fail(f"{file}: {exc}") from None
    engine = make_engine(get_settings().database_url,
                         dead_link_s=get_settings().database_dead_link_s)
    try:
        check_schema(engine)
        with session_scope(engine) as session:
            report = replace_areas(session, shapes, actor=cli_actor(), source=file.name[:200])
    finally:
        engine.dispose()
    typer.echo(f"{report.areas} areas loaded ({report.removed} removed); "
               f"{report.machines_moved} machines moved, "
               f"{report.machines_outside} in no area")


@app.command("list")
def list_command() -> None:
    """Print the stored area names, one a line."""
    from backend.config import get_settings
    from backend.db import check_schema, make_engine, session_scope

    engine = make_engine(get_settings().database_url,
                         dead_link_s=get_settings().database_dead_link_s)
    try:
        check_schema(engine)
        with session_scope(engine) as session:
            for shape in stored_shapes(session):
                typer.echo(shape.name)
    finally:
        engine.dispose()
