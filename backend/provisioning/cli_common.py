"""Helpers and option types shared by the ``nx-backend device`` command modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

from backend.config import Settings
from backend.provisioning import device_ops, registry
from backend.provisioning.dynsec import Command


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
    try:
        return device_ops.password_file(settings)
    except device_ops.DeviceError as exc:
        raise fail(str(exc)) from exc


def reload(settings: Settings, no_reload: bool) -> None:
    """Make the broker re-read its password file, ACL and CRL, or say how to."""
    try:
        device_ops.reload(device_ops.Broker(settings=settings, no_reload=no_reload, say=say))
    except device_ops.DeviceError as exc:
        raise fail(str(exc)) from exc


def run_dynsec(settings: Settings, user: str, password: str,
               commands: list[Command]) -> list[dict[str, Any]]:
    """Run plugin commands as its admin over the backend's broker connection; return answers."""
    broker = device_ops.Broker(settings=settings, dynsec_user=user, dynsec_password=password,
                               say=say)
    try:
        return device_ops.run_dynsec(broker, commands)
    except device_ops.DeviceError as exc:
        raise fail(str(exc)) from exc


@contextmanager
def audited(settings: Settings) -> Iterator[Session]:
    """Yield the transaction a command changes a credential in (with its audit record)."""
    try:
        with registry.session(settings) as session:
            yield session
    except registry.RegistryError as exc:
        raise fail(f"{exc} (no credential was changed without its audit record)") from exc
    except device_ops.DeviceError as exc:
        raise fail(str(exc)) from exc
