"""Device credential operations shared by ``nx-backend device`` and the device API routes.

Each change to a machine's broker credential is written with its audit record:
the caller opens a database transaction, makes the change inside it, and
``commit_audited`` adds the record and commits. A credential change that fails
rolls the transaction back, so nothing is recorded; the broker's own files or
plugin cannot join a database transaction, so a commit that fails after the
change is reported as such (the caller says what to check).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from backend.audit import record_audit
from backend.config import Settings
from backend.provisioning import ca_store
from backend.provisioning.broker_signal import BrokerSignalError, reload_broker
from backend.provisioning.dynsec import (
    DEFAULT_ADMIN_USER,
    Command,
    DynsecAdmin,
    DynsecError,
    add_machine_commands,
    remove_machine_commands,
    set_password_command,
)
from backend.provisioning.kick import BrokerLogin, KickError, take_over_session
from backend.provisioning.password_store import (
    CredentialError,
    read_entries,
    remove_password,
    set_password,
)
from backend.provisioning.passwords import new_password

log = logging.getLogger(__name__)

Say = Callable[[str], None]

RELOAD_SETTLE_S = 1.0
"""Mosquitto acts on SIGHUP at its next loop turn; kick only after the new CRL is in force,
or a revoked certificate client could reconnect in between and stay."""


class DeviceError(RuntimeError):
    """A credential could not be issued, replaced or withdrawn, or a session not ended."""


class DeviceNotFoundError(DeviceError, LookupError):
    """The machine has no credential to replace or withdraw."""


class DeviceExistsError(DeviceError):
    """The machine already has a credential (rotate it instead)."""


def _log(message: str) -> None:
    log.info("%s", message)


@dataclass(frozen=True)
class Broker:
    """How to reach the broker's credentials: its password file or its dynsec plugin."""

    settings: Settings
    dynsec_password: str | None = None
    dynsec_user: str = DEFAULT_ADMIN_USER
    no_reload: bool = False
    say: Say = field(default=_log)

    @classmethod
    def from_settings(cls, settings: Settings, *, say: Say = _log) -> Broker:
        """Return the broker access the settings describe (the API's; never signals less)."""
        secret = settings.broker_dynsec_admin_password
        return cls(settings=settings, dynsec_user=settings.broker_dynsec_admin,
                   dynsec_password=None if secret is None else secret.get_secret_value(),
                   say=say)

    @property
    def uses_plugin(self) -> bool:
        """Say whether machines live in the dynamic-security plugin."""
        return bool(self.dynsec_password)


def password_file(settings: Settings) -> Path:
    """Return the broker's password file, or raise saying how to set it."""
    if settings.broker_password_file is None:
        raise DeviceError("set NX_BROKER_PASSWORD_FILE to the broker's password_file")
    return settings.broker_password_file


def run_dynsec(broker: Broker, commands: list[Command]) -> list[dict[str, Any]]:
    """Run plugin commands as its admin over the broker connection settings; return answers."""
    settings = broker.settings
    try:
        with DynsecAdmin(host=settings.mqtt_host, port=settings.mqtt_port,
                         username=broker.dynsec_user, password=broker.dynsec_password or "",
                         ca_file=str(settings.mqtt_tls_ca_file)
                         if settings.mqtt_tls_ca_file else None) as admin:
            return admin.run(commands)
    except (DynsecError, OSError) as exc:
        raise DeviceError(f"dynamic-security plugin: {exc}") from exc


def reload(broker: Broker) -> bool:
    """Make the broker re-read its password file, ACL and CRL (or say how); say if it did."""
    settings = broker.settings
    if broker.no_reload or settings.broker_pid_file is None:
        broker.say("broker not signalled: reload it with `kill -HUP $(cat <pid_file>)` "
                   "(or `systemctl reload mosquitto`)")
        return False
    try:
        pid = reload_broker(settings.broker_pid_file)
    except BrokerSignalError as exc:
        raise DeviceError(f"{exc}; the change is on disk but the broker has not seen it"
                          ) from exc
    broker.say(f"broker (pid {pid}) reloaded")
    return True


def issue_password(broker: Broker, machine_id: str) -> str:
    """Give a new machine a broker password (plugin client, or password file and reload)."""
    if broker.uses_plugin:
        password = new_password()
        run_dynsec(broker, add_machine_commands(machine_id, password))
        broker.say(f"{machine_id} created in the dynamic-security plugin (own role, pinned id)")
        return password
    path = password_file(broker.settings)
    try:
        if machine_id in read_entries(path):
            raise DeviceExistsError(f"{machine_id} already has a broker credential; "
                                    "rotate it instead")
        password = set_password(path, machine_id)
    except CredentialError as exc:
        raise DeviceError(str(exc)) from exc
    broker.say(f"password for {machine_id} added to {path}")
    broker.say("warning: a password-file broker cannot stop this machine from joining the "
               "ingest's shared subscription or taking over other clients' ids; migrate it "
               "to the dynamic-security plugin (broker_config/README.md)")
    reload(broker)
    return password


def rotate_password(broker: Broker, machine_id: str) -> str:
    """Replace a machine's password; the old one ends at once (plugin) or at the reload."""
    if broker.uses_plugin:
        password = new_password()
        run_dynsec(broker, [set_password_command(machine_id, password)])
        broker.say(f"password for {machine_id} replaced in the dynamic-security plugin")
        return password
    path = password_file(broker.settings)
    try:
        if machine_id not in read_entries(path):
            raise DeviceNotFoundError(f"{machine_id} has no password in {path}; use `device add`")
        password = set_password(path, machine_id, replace=True)
    except CredentialError as exc:
        raise DeviceError(str(exc)) from exc
    broker.say(f"password for {machine_id} replaced")
    reload(broker)
    return password


@dataclass(frozen=True)
class Withdrawn:
    """What a revocation took away."""

    by_plugin: bool
    password_removed: bool
    serials: list[int]

    def audit_values(self) -> dict[str, Any]:
        """Return what the audit trail keeps of it."""
        return {"plugin_client_removed": self.by_plugin,
                "password_removed": self.password_removed,
                "certificates_revoked": self.serials}


def withdraw(broker: Broker, machine_id: str, *, ca_dir: Path,
             crl_file: Path | None = None) -> Withdrawn:
    """Delete a machine's plugin client or password and revoke its certificates."""
    settings = broker.settings
    by_plugin = removed = False
    if broker.uses_plugin:
        # The plugin disconnects a deleted client itself: no reload, no kick.
        run_dynsec(broker, remove_machine_commands(machine_id))
        broker.say(f"{machine_id} deleted from the dynamic-security plugin and disconnected")
        by_plugin = True
    elif settings.broker_password_file is not None:
        try:
            removed = remove_password(settings.broker_password_file, machine_id)
        except CredentialError as exc:
            raise DeviceError(str(exc)) from exc
        if removed:
            broker.say(f"password for {machine_id} removed")
    serials: list[int] = []
    if (ca_dir / "ca.key").exists():
        serials = ca_store.revoke_client(ca_dir, machine_id)
        if serials:
            broker.say(f"{len(serials)} certificate(s) of {machine_id} added to "
                       f"{ca_dir / 'crl.pem'}")
            if crl_file is not None:
                # The broker must hold the new CRL before the reload that follows.
                ca_store.export_crl(ca_dir, crl_file)
                broker.say(f"CRL copied to {crl_file}")
    if not by_plugin and not removed and not serials:
        looked = [str(p) for p in (settings.broker_password_file, ca_dir / "issued.json")
                  if p is not None and p.exists()]
        raise DeviceNotFoundError(
            f"{machine_id} has no password or certificate to revoke "
            f"(looked in: {', '.join(looked) or 'nothing: set NX_BROKER_PASSWORD_FILE'})")
    return Withdrawn(by_plugin=by_plugin, password_removed=removed, serials=serials)


def finish_revocation(broker: Broker, machine_id: str, withdrawn: Withdrawn, *,
                      kick_session: bool) -> None:
    """Reload the broker where it must re-read files, then end the machine's live session."""
    reloaded = False
    if not withdrawn.by_plugin or withdrawn.serials:
        # The plugin needs no reload, but the broker re-reads its CRL only on one.
        reloaded = reload(broker)
    if kick_session and not withdrawn.by_plugin:
        if reloaded:
            time.sleep(RELOAD_SETTLE_S)
        try:
            kick(broker.settings, machine_id)
        except DeviceError as exc:
            raise DeviceError(f"credential revoked, but its live session was not ended: {exc}; "
                              f"retry with `nx-backend device kick {machine_id}`") from exc
        broker.say(f"live connection and stored session of {machine_id} ended")


def kick(settings: Settings, machine_id: str) -> None:
    """End a machine's live connection and stored session by taking over its client id."""
    login = BrokerLogin(
        host=settings.mqtt_host, port=settings.mqtt_port, username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value(),
        ca_file=str(settings.mqtt_tls_ca_file) if settings.mqtt_tls_ca_file else None,
    )
    try:
        take_over_session(login, machine_id)
    except KickError as exc:
        raise DeviceError(str(exc)) from exc


def commit_audited(session: Session, *, actor: str, action: str, machine_id: str,
                   after: Mapping[str, Any] | None = None, request_id: str | None = None,
                   object_type: str = "machine") -> None:
    """Add the audit record of a credential change made in this transaction, and commit."""
    record_audit(session, actor=actor, action=action, object_type=object_type,
                 object_id=machine_id, after=after, request_id=request_id)
    session.commit()
