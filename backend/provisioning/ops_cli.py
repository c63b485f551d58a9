"""Operator commands of ``nx-backend device``: service passwords, dynsec bootstrap, watch, list."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Annotated

import typer

from backend.audit import cli_actor
from backend.config import get_settings
from backend.provisioning import ca_store
from backend.provisioning.broker_monitor import BrokerMonitor
from backend.provisioning.ca_store import give_to_broker_user
from backend.provisioning.cli_common import (
    DynsecPassword,
    DynsecUser,
    NoReload,
    audited,
    run_dynsec,
)
from backend.provisioning.cli_common import fail as _fail
from backend.provisioning.cli_common import password_file as _password_file
from backend.provisioning.cli_common import reload as _reload
from backend.provisioning.cli_common import say as _say
from backend.provisioning.device_ops import commit_audited
from backend.provisioning.dynsec import (
    DEFAULT_ADMIN_USER,
    LIST_CLIENTS,
    backend_commands,
    client_names,
    initial_config,
    migrated_config,
    set_password_command,
)
from backend.provisioning.identity import SERVICE_PREFIX
from backend.provisioning.password_store import CredentialError, read_entries, set_password
from backend.provisioning.passwords import new_password


def service_password(
    username: Annotated[str, typer.Argument(help="Service account, e.g. nx-backend.")],
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace an existing password.")
                      ] = False,
    share_group: Annotated[str, typer.Option(
        envvar="NX_INGEST_SHARE_GROUP", help="The ingest's share group.")] = "nx-ingest",
    dynsec_password: DynsecPassword = None,
    dynsec_user: DynsecUser = DEFAULT_ADMIN_USER,
    no_reload: NoReload = False,
) -> None:
    """Create (or rotate) a service account's broker password and print it."""
    settings = get_settings()
    if not username.startswith(SERVICE_PREFIX):
        raise _fail(f"service accounts start with {SERVICE_PREFIX!r}; machines use `device add`")
    with audited(settings) as session:
        if dynsec_password:
            # A new service joins the backend's role, which dynsec-init created.
            password = new_password()
            commands = ([set_password_command(username, password)] if rotate else
                        backend_commands(username, password, share_group, create_role=False))
            run_dynsec(settings, dynsec_user, dynsec_password, commands)
        else:
            try:
                password = set_password(_password_file(settings), username, replace=rotate)
            except CredentialError as exc:
                raise _fail(str(exc)) from exc
            _reload(settings, no_reload)
        commit_audited(session, actor=cli_actor(), object_type="service", machine_id=username,
                       action="service.rotate" if rotate else "service.add",
                       after={"credential": "password", "plugin": bool(dynsec_password)})
    typer.echo(password)


def watch_broker() -> None:
    """Watch the broker's dropped-message counter; open a delivery-gap alert on overflow."""
    from backend.provisioning.drop_alert import make_drop_alert_handler

    settings = get_settings()
    monitor = BrokerMonitor(
        host=settings.mqtt_host, port=settings.mqtt_port, username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value(),
        on_drop=make_drop_alert_handler(settings),
        ca_file=str(settings.mqtt_tls_ca_file) if settings.mqtt_tls_ca_file else None,
    )
    monitor.start()
    _say(f"watching {settings.mqtt_host}:{settings.mqtt_port} for dropped messages; Ctrl-C stops")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        monitor.stop()


def dynsec_init(
    path: Annotated[Path, typer.Argument(help="Where the plugin keeps its state "
                                              "(plugin_opt_config_file).")],
    share_group: Annotated[str, typer.Option(
        envvar="NX_INGEST_SHARE_GROUP",
        help="The ingest's share group (choose one nobody can guess).")] = "nx-ingest",
    admin_user: DynsecUser = DEFAULT_ADMIN_USER,
    backend_user: Annotated[str, typer.Option(help="The backend's MQTT user.")] = "nx-backend",
    from_password_file: Annotated[Path | None, typer.Option(
        help="Migrate: every user of this legacy password file keeps its password.")] = None,
    ca_dir: Annotated[Path | None, typer.Option(
        help="Migrate: also every machine holding a certificate from this CA.")] = None,
) -> None:
    """Write the dynamic-security bootstrap (admin + backend) and print their passwords."""
    if path.exists():
        raise _fail(f"{path} exists; the plugin owns it now (use device add/revoke)")
    admin_password, backend_password = new_password(), new_password()
    if from_password_file is not None or ca_dir is not None:
        try:
            entries = read_entries(from_password_file) if from_password_file else {}
            certified = ca_store.certified_machines(ca_dir) if ca_dir else []
        except (CredentialError, ca_store.CaError) as exc:
            raise _fail(str(exc)) from exc
        config, skipped = migrated_config((admin_user, admin_password), entries, certified,
                                          share_group)
        for reason in skipped:
            _say(f"warning: not migrated: {reason}")
        _say(f"migrated {len(config['clients']) - 1} clients "
             f"({len(entries)} password entries, {len(certified)} certificate machines)")
        if backend_user in entries:
            backend_password = ""  # it keeps the password it has
    else:
        config = initial_config(admin_user, admin_password,
                                backend=(backend_user, backend_password, share_group))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
    give_to_broker_user(path)  # the plugin rewrites it as the broker's user
    _say(f"bootstrap written to {path}; start the broker with plugin_opt_config_file {path}")
    typer.echo(f"NX_BROKER_DYNSEC_ADMIN_PASSWORD={admin_password}")
    if backend_password:
        typer.echo(f"NX_MQTT_PASSWORD={backend_password}")


def list_credentials(
    dynsec_password: DynsecPassword = None,
    dynsec_user: DynsecUser = DEFAULT_ADMIN_USER,
) -> None:
    """List the broker's usernames: the plugin's clients, or a legacy password file's."""
    settings = get_settings()
    if dynsec_password:
        [reply] = run_dynsec(settings, dynsec_user, dynsec_password, [LIST_CLIENTS])
        names = client_names(reply)
    else:
        try:
            names = sorted(read_entries(_password_file(settings)))
        except CredentialError as exc:
            raise _fail(str(exc)) from exc
    for username in names:
        typer.echo(username)


def register(target: typer.Typer) -> None:
    """Add this module's commands to ``target`` (the ``device`` group)."""
    target.command("service-password")(service_password)
    target.command("watch-broker")(watch_broker)
    target.command("dynsec-init")(dynsec_init)
    target.command("list")(list_credentials)
