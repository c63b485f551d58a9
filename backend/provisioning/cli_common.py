"""Small helpers shared by the ``nx-backend device`` command modules."""

from __future__ import annotations

import typer


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def say(message: str) -> None:
    """Print a status line to stderr (stdout carries only what is meant to be piped)."""
    typer.echo(message, err=True)
