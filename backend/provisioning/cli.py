"""``nx-backend device ...``: register machines and manage their broker credentials."""

from __future__ import annotations

import typer

app = typer.Typer(help="Register machines and manage their credentials.", no_args_is_help=True)
