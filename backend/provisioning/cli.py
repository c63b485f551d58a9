"""``nx-backend device ...``: register machines and manage their broker credentials.

Status goes to stderr; the agent configuration (which holds the credential)
goes to stdout or to ``--out``, so it can be piped straight to the Pi.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from backend import crud
from backend.audit import cli_actor
from backend.config import Settings, get_settings
from backend.provisioning import ca_store
from backend.provisioning.agent_config import AgentConfig, render_agent_toml
from backend.provisioning.ca_cli import DEFAULT_CA_DIR, CaDir, ca_app
from backend.provisioning.cli_common import DynsecPassword, DynsecUser, NoReload
from backend.provisioning.cli_common import audited as _audited
from backend.provisioning.cli_common import fail as _fail
from backend.provisioning.cli_common import say as _say
from backend.provisioning.device_ops import (
    Broker,
    DeviceError,
    commit_audited,
    finish_revocation,
    issue_password,
    rotate_password,
    run_dynsec,
    withdraw,
)
from backend.provisioning.device_ops import (
    kick as end_session,
)
from backend.provisioning.dynsec import DEFAULT_ADMIN_USER, add_machine_commands
from backend.provisioning.identity import (
    IdentityError,
    validate_device_id,
)
from backend.provisioning.ops_cli import register as register_ops

app = typer.Typer(help="Register machines and manage their credentials.", no_args_is_help=True)
app.add_typer(ca_app, name="ca")

PI_CERT_DIR = "/etc/nx-agent"
"""Where the agent's certificate files go on the Pi (paths written into its TOML)."""


def _broker(settings: Settings, *, dynsec_password: str | None = None,
            dynsec_user: str = DEFAULT_ADMIN_USER, no_reload: bool = False) -> Broker:
    return Broker(settings=settings, dynsec_password=dynsec_password, dynsec_user=dynsec_user,
                  no_reload=no_reload, say=_say)


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
    broker = _broker(settings, dynsec_password=dynsec_password, dynsec_user=dynsec_user,
                     no_reload=no_reload)
    host = broker_host or settings.mqtt_host
    with _audited(settings) as session:
        if register:
            try:
                crud.register_machine(session=session, machine_id=machine_id, name=name,
                                      lat=lat, lon=lon, site=site, area=area,
                                      actor=cli_actor(), commit=False)
            except ValueError as exc:
                raise _fail(f"cannot register {machine_id}: {exc}") from exc
        if cert:
            try:
                bundle = ca_store.issue_client(ca_dir, machine_id,
                                               cert_out or ca_dir / "machines" / machine_id)
            except ca_store.CaError as exc:
                raise _fail(str(exc)) from exc
            _say(f"certificate for {machine_id} written to {bundle.cert_file.parent}; copy "
                 f"{bundle.cert_file.name}, {bundle.key_file.name} and ca.crt to "
                 f"{PI_CERT_DIR}/")
            if broker.uses_plugin:
                # The certificate proves who it is; its client in the plugin (no
                # password) holds what it may do.
                run_dynsec(broker, add_machine_commands(machine_id, None))
                _say(f"{machine_id} created in the dynamic-security plugin "
                     "(own role, no password)")
            else:
                _say(f"warning: NX_BROKER_DYNSEC_ADMIN_PASSWORD is not set, so {machine_id} "
                     f"has no client in the broker's dynamic-security plugin: it can connect "
                     f"but not publish until it has one (broker_config/README.md)")
            config = AgentConfig(
                machine_id=machine_id, mqtt_host=host, mqtt_port=broker_port or 8883,
                tls_ca_file=Path(PI_CERT_DIR) / "ca.crt",
                tls_cert_file=Path(PI_CERT_DIR) / bundle.cert_file.name,
                tls_key_file=Path(PI_CERT_DIR) / bundle.key_file.name,
            )
        else:
            password = issue_password(broker, machine_id)
            config = AgentConfig(
                machine_id=machine_id, mqtt_host=host,
                mqtt_port=broker_port or settings.mqtt_port, mqtt_password=password,
                tls_ca_file=Path(tls_ca_file) if tls_ca_file else None,
            )
        commit_audited(session, actor=cli_actor(), action="device.add", machine_id=machine_id,
                       after={"credential": "certificate" if cert else "password",
                              "plugin": broker.uses_plugin, "registered": register})
    if register:
        _say(f"machine {machine_id} registered")
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
    broker = _broker(settings, dynsec_password=dynsec_password, dynsec_user=dynsec_user,
                     no_reload=no_reload)
    with _audited(settings) as session:
        password = rotate_password(broker, machine_id)
        commit_audited(session, actor=cli_actor(), action="device.rotate",
                       machine_id=machine_id,
                       after={"credential": "password", "plugin": broker.uses_plugin})
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
    broker = _broker(settings, dynsec_password=dynsec_password, dynsec_user=dynsec_user,
                     no_reload=no_reload)
    with _audited(settings) as session:
        withdrawn = withdraw(broker, machine_id, ca_dir=ca_dir, crl_file=crl_file)
        known = False
        if deactivate:
            try:
                crud.deactivate_machine(session=session, machine_id=machine_id,
                                        actor=cli_actor(), commit=False)
                known = True
            except crud.NotFoundError:
                pass
        commit_audited(session, actor=cli_actor(), action="device.revoke",
                       machine_id=machine_id, after=withdrawn.audit_values())
    if deactivate:
        _say(f"machine {machine_id} {'deactivated' if known else 'was not in the database'}")
    try:
        finish_revocation(broker, machine_id, withdrawn, kick_session=kick)
    except DeviceError as exc:
        raise _fail(str(exc)) from exc


@app.command("kick")
def kick_command(
    machine_id: Annotated[str, typer.Argument(help="Machine whose connection to end.")],
) -> None:
    """End a machine's live connection and stored session (it may reconnect if still valid)."""
    settings = get_settings()
    machine_id = _checked_id(machine_id)
    with _audited(settings) as session:
        end_session(settings, machine_id)
        commit_audited(session, actor=cli_actor(), action="device.kick", machine_id=machine_id)
    _say(f"live connection and stored session of {machine_id} ended")


register_ops(app)


@app.command()
def tag(
    machine_id: Annotated[str, typer.Argument(help="Machine whose tags to set.")],
    tags: Annotated[list[str] | None, typer.Argument(
        help="Its whole new set of tags (none: clear them).")] = None,
) -> None:
    """Replace a machine's tags (notification routes may select machines by them)."""
    from pydantic import ValidationError

    from backend.models import MachineTags

    try:
        wanted = MachineTags(tags=tags or [])
    except ValidationError as exc:
        raise _fail(f"bad tags: {exc.errors()[0]['msg']} (1-32 of a-z 0-9 - _, at most 20)"
                    ) from None
    with _audited(get_settings()) as session:
        try:
            machine = crud.set_machine_tags(session=session, machine_id=machine_id,
                                            tags=wanted.tags, actor=cli_actor())
        except crud.NotFoundError as exc:
            raise _fail(str(exc)) from None
    _say(f"{machine_id}: {' '.join(machine.tags) or '(no tags)'}")
