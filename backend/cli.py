"""``nx-backend``: the backend's command line (serve, ingest, migrate, backup, device, token...)."""

from __future__ import annotations

import typer

from backend.areas.cli import app as areas_app
from backend.audit.cli import app as audit_app
from backend.auth.cli import app as token_app
from backend.backup_cli import register as register_backup
from backend.hotspots.cli import app as hotspots_app
from backend.provisioning.cli import app as device_app
from backend.public.cli import app as public_app
from backend.report.cli import app as report_app
from backend.restock.cli import app as restock_app
from backend.service_cli import register as register_services

app = typer.Typer(help="NaloxNet backend: API, ingest workers, provisioning, hotspot scans.",
                  no_args_is_help=True)
app.add_typer(device_app, name="device")
app.add_typer(hotspots_app, name="hotspots")
app.add_typer(token_app, name="token")
app.add_typer(public_app, name="public")
app.add_typer(audit_app, name="audit")
app.add_typer(restock_app, name="restock")
app.add_typer(areas_app, name="areas")
app.add_typer(report_app, name="report")
register_services(app)
register_backup(app)


def main() -> None:
    """Run the ``nx-backend`` command line."""
    app()
