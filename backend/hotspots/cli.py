"""``nx-backend hotspots ...``: run the detectors on SaTScan-format files."""

from __future__ import annotations

import typer

app = typer.Typer(help="Overdose-hotspot scans.", no_args_is_help=True)
