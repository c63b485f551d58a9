"""Helpers and option types shared by the ``nx-backend device`` command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backend.config import Settings
from backend.provisioning.broker_signal import BrokerSignalError, reload_broker
from backend.provisioning.dynsec import Command, DynsecAdmin, DynsecError


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def say(message: str) -> None:
    """Print a status line to stderr (stdout carries only what is meant to be piped)."""
    typer.echo(message, err=True)


DynsecPassword = Annotated[str | None, typer.Option(
    envvar="NX_BROKER_DYNSEC_ADMIN_PASSWORD", show_default=False,
    help="Manage machines through Mosquitto's dynamic-security plugin as its admin.")]
DynsecUser = Annotated[str, typer.Option(envvar="NX_BROKER_DYNSEC_ADMIN",
                                         help="The dynamic-security admin's username.")]
NoReload = Annotated[bool, typer.Option("--no-reload",
                                        help="Do not SIGHUP the broker (print how instead).")]


def password_file(settings: Settings) -> Path:
    """Return the broker's password file from the settings, or exit saying how to set it."""
    if settings.broker_password_file is None:
        raise fail("set NX_BROKER_PASSWORD_FILE to the broker's password_file")
    return settings.broker_password_file


def reload(settings: Settings, no_reload: bool) -> None:
    """Make the broker re-read its password file, ACL and CRL, or say how to."""
    if no_reload or settings.broker_pid_file is None:
        say("broker not signalled: reload it with `kill -HUP $(cat <pid_file>)` "
             "(or `systemctl reload mosquitto`)")
        return
    try:
        pid = reload_broker(settings.broker_pid_file)
    except BrokerSignalError as exc:
        raise fail(f"{exc}; the change is on disk but the broker has not seen it") from exc
    say(f"broker (pid {pid}) reloaded")


def run_dynsec(settings: Settings, user: str, password: str, commands: list[Command]) -> None:
    """Run plugin commands as its admin over the backend's broker connection settings."""
    try:
        with DynsecAdmin(host=settings.mqtt_host, port=settings.mqtt_port, username=user,
                         password=password,
                         ca_file=str(settings.mqtt_tls_ca_file)
                         if settings.mqtt_tls_ca_file else None) as admin:
            admin.run(commands)
    except (DynsecError, OSError) as exc:
        raise fail(f"dynamic-security plugin: {exc}") from exc
