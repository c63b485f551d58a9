"""``nx-backend device ...``: register machines and manage their broker credentials.

Status goes to stderr; the agent configuration (which holds the credential)
goes to stdout or to ``--out``, so it can be piped straight to the Pi.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from backend.audit import cli_actor
from backend.config import Settings, get_settings
from backend.provisioning import ca_store, registry
from backend.provisioning.agent_config import AgentConfig, render_agent_toml
from backend.provisioning.ca_cli import DEFAULT_CA_DIR, CaDir, ca_app
from backend.provisioning.cli_common import DynsecPassword, DynsecUser, NoReload
from backend.provisioning.cli_common import fail as _fail
from backend.provisioning.cli_common import password_file as _password_file
from backend.provisioning.cli_common import reload as _reload
from backend.provisioning.cli_common import run_dynsec as _dynsec
from backend.provisioning.cli_common import say as _say
from backend.provisioning.dynsec import (
    DEFAULT_ADMIN_USER,
    add_machine_commands,
    remove_machine_commands,
    set_password_command,
)
from backend.provisioning.identity import (
    IdentityError,
    validate_device_id,
)
from backend.provisioning.kick import BrokerLogin, KickError, take_over_session
from backend.provisioning.ops_cli import register as register_ops
from backend.provisioning.password_store import (
    CredentialError,
    read_entries,
    remove_password,
    set_password,
)
from backend.provisioning.passwords import new_password

app = typer.Typer(help="Register machines and manage their credentials.", no_args_is_help=True)
app.add_typer(ca_app, name="ca")

RELOAD_SETTLE_S = 1.0
"""Mosquitto acts on SIGHUP at its next loop turn; kick only after the new CRL is in force,
or a revoked certificate client could reconnect in between and stay."""
PI_CERT_DIR = "/etc/nx-agent"
"""Where the agent's certificate files go on the Pi (paths written into its TOML)."""


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    _say(f"agent configuration written to {out} (mode 0600)")


def _checked_id(machine_id: str) -> str:
    try:
        return validate_device_id(machine_id)
    except IdentityError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def add(
    machine_id: Annotated[str, typer.Argument(help="Machine id; also its MQTT username.")],
    lat: Annotated[float, typer.Option(min=-90, max=90, help="Latitude, WGS84.")],
    lon: Annotated[float, typer.Option(min=-180, max=180, help="Longitude, WGS84.")],
    name: Annotated[str, typer.Option(help="Human name shown in the console.")],
    site: Annotated[str | None, typer.Option(help="Site or host organisation.")] = None,
    area: Annotated[str | None, typer.Option(
        help="Named area (neighbourhood) that API tokens can be limited to.")] = None,
    cert: Annotated[bool, typer.Option("--cert",
                                       help="Issue a client certificate instead of a password."
                                       )] = False,
    ca_dir: CaDir = DEFAULT_CA_DIR,
    cert_out: Annotated[Path | None, typer.Option(
        help="Where to write the machine's certificate files (default CA_DIR/machines/ID).")
    ] = None,
    broker_host: Annotated[str | None, typer.Option(
        envvar="NX_BROKER_PUBLIC_HOST", help="Broker address as the Pi sees it.")] = None,
    broker_port: Annotated[int | None, typer.Option(
        envvar="NX_BROKER_PUBLIC_PORT", help="Broker port as the Pi sees it.")] = None,
    tls_ca_file: Annotated[str | None, typer.Option(
        help="Password mode over TLS: path of the CA certificate on the Pi.")] = None,
    register: Annotated[bool, typer.Option(help="Record the machine in the database.")
                        ] = True,
    out: Annotated[Path | None, typer.Option(help="Write the agent TOML here, not stdout.")
                   ] = None,
    dynsec_password: DynsecPassword = None,
    dynsec_user: DynsecUser = DEFAULT_ADMIN_USER,
    no_reload: NoReload = False,
) -> None:
    """Register a machine, create its broker credential and print its agent configuration."""
    settings = get_settings()
    machine_id = _checked_id(machine_id)
    if register:
        try:
            registry.register(settings, machine_id=machine_id, name=name, lat=lat, lon=lon,
                              site=site, area=area, actor=cli_actor())
        except registry.RegistryError as exc:
            raise _fail(str(exc)) from exc
        _say(f"machine {machine_id} registered")
    host = broker_host or settings.mqtt_host
    if cert:
        try:
            bundle = ca_store.issue_client(ca_dir, machine_id,
                                           cert_out or ca_dir / "machines" / machine_id)
        except ca_store.CaError as exc:
            raise _fail(str(exc)) from exc
        _say(f"certificate for {machine_id} written to {bundle.cert_file.parent}; copy "
             f"{bundle.cert_file.name}, {bundle.key_file.name} and ca.crt to {PI_CERT_DIR}/")
        if dynsec_password:
            # The certificate proves who it is; its client in the plugin (no
            # password) holds what it may do.
            _dynsec(settings, dynsec_user, dynsec_password,
                    add_machine_commands(machine_id, None))
            _say(f"{machine_id} created in the dynamic-security plugin (own role, no password)")
        else:
            _say(f"warning: NX_BROKER_DYNSEC_ADMIN_PASSWORD is not set, so {machine_id} has no "
                 f"client in the broker's dynamic-security plugin: it can connect but not "
                 f"publish until it has one (broker_config/README.md)")
        config = AgentConfig(
            machine_id=machine_id, mqtt_host=host, mqtt_port=broker_port or 8883,
            tls_ca_file=Path(PI_CERT_DIR) / "ca.crt",
            tls_cert_file=Path(PI_CERT_DIR) / bundle.cert_file.name,
            tls_key_file=Path(PI_CERT_DIR) / bundle.key_file.name,
        )
    else:
        if dynsec_password:
            password = new_password()
            _dynsec(settings, dynsec_user, dynsec_password,
                    add_machine_commands(machine_id, password))
            _say(f"{machine_id} created in the dynamic-security plugin (own role, pinned id)")
        else:
            try:
                password = set_password(_password_file(settings), machine_id)
            except CredentialError as exc:
                raise _fail(str(exc)) from exc
            _say(f"password for {machine_id} added to {settings.broker_password_file}")
            _say("warning: a password-file broker cannot stop this machine from joining the "
                 "ingest's shared subscription or taking over other clients' ids; migrate it "
                 "to the dynamic-security plugin (broker_config/README.md)")
            _reload(settings, no_reload)
        config = AgentConfig(
            machine_id=machine_id, mqtt_host=host,
            mqtt_port=broker_port or settings.mqtt_port, mqtt_password=password,
            tls_ca_file=Path(tls_ca_file) if tls_ca_file else None,
        )
    _emit(render_agent_toml(config), out)


@app.command()
def rotate(
    machine_id: Annotated[str, typer.Argument(help="Machine whose password to replace.")],
    broker_host: Annotated[str | None, typer.Option(envvar="NX_BROKER_PUBLIC_HOST")] = None,
    broker_port: Annotated[int | None, typer.Option(envvar="NX_BROKER_PUBLIC_PORT")] = None,
    tls_ca_file: Annotated[str | None, typer.Option(help="CA path on the Pi.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the agent TOML here.")] = None,
    dynsec_password: DynsecPassword = None,
    dynsec_user: DynsecUser = DEFAULT_ADMIN_USER,
    no_reload: NoReload = False,
) -> None:
    """Give a machine a new password; the old one stops working at once (plugin) or at reload."""
    settings = get_settings()
    machine_id = _checked_id(machine_id)
    if dynsec_password:
        password = new_password()
        _dynsec(settings, dynsec_user, dynsec_password,
                [set_password_command(machine_id, password)])
        _say(f"password for {machine_id} replaced in the dynamic-security plugin")
    else:
        path = _password_file(settings)
        try:
            if machine_id not in read_entries(path):
                raise _fail(f"{machine_id} has no password in {path}; use `device add`")
            password = set_password(path, machine_id, replace=True)
        except CredentialError as exc:
            raise _fail(str(exc)) from exc
        _say(f"password for {machine_id} replaced")
        _reload(settings, no_reload)
    config = AgentConfig(machine_id=machine_id, mqtt_host=broker_host or settings.mqtt_host,
                         mqtt_port=broker_port or settings.mqtt_port, mqtt_password=password,
                         tls_ca_file=Path(tls_ca_file) if tls_ca_file else None)
    _emit(render_agent_toml(config), out)


@app.command()
def revoke(
    machine_id: Annotated[str, typer.Argument(help="Machine whose credentials to withdraw.")],
    ca_dir: CaDir = DEFAULT_CA_DIR,
    deactivate: Annotated[bool, typer.Option(
        help="Also mark the machine inactive in the database.")] = False,
    kick: Annotated[bool, typer.Option(
        help="End its live connection and stored session (takes over its client id).")
    ] = True,
    crl_file: Annotated[Path | None, typer.Option(
        envvar="NX_BROKER_CRL_FILE",
        help="The broker's crlfile, if not the CA directory's crl.pem.")] = None,
    dynsec_password: DynsecPassword = None,
    dynsec_user: DynsecUser = DEFAULT_ADMIN_USER,
    no_reload: NoReload = False,
) -> None:
    """Withdraw a machine's password and certificates and make the broker drop it."""
    settings = get_settings()
    machine_id = _checked_id(machine_id)
    removed = False
    if dynsec_password:
        # The plugin disconnects a deleted client itself: no reload, no kick.
        _dynsec(settings, dynsec_user, dynsec_password, remove_machine_commands(machine_id))
        _say(f"{machine_id} deleted from the dynamic-security plugin and disconnected")
        removed, kick = True, False
    elif settings.broker_password_file is not None:
        try:
            removed = remove_password(settings.broker_password_file, machine_id)
        except CredentialError as exc:
            raise _fail(str(exc)) from exc
        if removed:
            _say(f"password for {machine_id} removed")
    serials: list[int] = []
    if (ca_dir / "ca.key").exists():
        serials = ca_store.revoke_client(ca_dir, machine_id)
        if serials:
            _say(f"{len(serials)} certificate(s) of {machine_id} added to {ca_dir / 'crl.pem'}")
            if crl_file is not None:
                # The broker must hold the new CRL before the reload below.
                ca_store.export_crl(ca_dir, crl_file)
                _say(f"CRL copied to {crl_file}")
    if not removed and not serials:
        looked = [str(p) for p in (settings.broker_password_file, ca_dir / "issued.json")
                  if p is not None and p.exists()]
        raise _fail(f"{machine_id} has no password or certificate to revoke "
                    f"(looked in: {', '.join(looked) or 'nothing: set NX_BROKER_PASSWORD_FILE'})")
    if deactivate:
        try:
            known = registry.deactivate(settings, machine_id=machine_id, actor=cli_actor())
        except registry.RegistryError as exc:
            raise _fail(str(exc)) from exc
        _say(f"machine {machine_id} {'deactivated' if known else 'was not in the database'}")
    if not dynsec_password or serials:
        # The plugin needs no reload, but the broker re-reads its CRL only on one.
        _reload(settings, no_reload)
    if kick:
        if not no_reload and settings.broker_pid_file is not None:
            time.sleep(RELOAD_SETTLE_S)
        _kick(settings, machine_id)


def _kick(settings: Settings, machine_id: str) -> None:
    login = BrokerLogin(
        host=settings.mqtt_host, port=settings.mqtt_port, username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value(),
        ca_file=str(settings.mqtt_tls_ca_file) if settings.mqtt_tls_ca_file else None,
    )
    try:
        take_over_session(login, machine_id)
    except KickError as exc:
        raise _fail(f"credential revoked, but its live session was not ended: {exc}; "
                    f"retry with `nx-backend device kick {machine_id}`") from exc
    _say(f"live connection and stored session of {machine_id} ended")


@app.command("kick")
def kick_command(
    machine_id: Annotated[str, typer.Argument(help="Machine whose connection to end.")],
) -> None:
    """End a machine's live connection and stored session (it may reconnect if still valid)."""
    _kick(get_settings(), _checked_id(machine_id))


register_ops(app)
