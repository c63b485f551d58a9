"""``nx-backend backup | restore``: online backup of the SQLite database, and bringing one back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backend.config import get_settings


def backup_command(
    out: Annotated[Path, typer.Option("--out", help="File to write the backup to")],
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: NX_DATABASE_URL)")] = None,
) -> None:
    """Back up the SQLite database while it is in use (PostgreSQL: use pg_dump)."""
    from backend.backup import BackupError, backup

    try:
        info = backup(database_url or get_settings().database_url, out)
    except BackupError as exc:
        typer.echo(f"backup refused: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"backed up to {info.path} ({info.size_bytes} bytes, schema {info.revision})")


def restore_command(
    backup_file: Annotated[Path, typer.Argument(help="A file made by `nx-backend backup`")],
    force: Annotated[bool, typer.Option(
        "--force", help="Restore even while other processes have the database open")] = False,
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: NX_DATABASE_URL)")] = None,
) -> None:
    """Replace the SQLite database with a backup (stop serve and ingest first)."""
    from alembic.script import ScriptDirectory

    from backend.backup import BackupError, restore
    from backend.db import alembic_config, head_revision

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known = {script.revision for script in scripts.walk_revisions()}
    try:
        info = restore(database_url or get_settings().database_url, backup_file,
                       known_revisions=known, force=force)
    except BackupError as exc:
        typer.echo(f"restore refused: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"restored {info.path} (schema {info.revision})")
    if info.revision != head_revision():
        typer.echo(f"the backup is at schema {info.revision}, this code at {head_revision()}: "
                   "run `nx-backend migrate` before starting the services")


def register(app: typer.Typer) -> None:
    """Add the backup commands to the ``nx-backend`` app."""
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
