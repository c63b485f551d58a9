"""Mosquitto's dynamic-security plugin: where every shipped broker config keeps identities.

Mosquitto 2.0's ``acl_file`` grants every SUBSCRIBE (broker_config/README.md),
so a machine could join the ingest's shared-subscription group and make the
broker drop events, and a password file cannot tie a client id to its
credential. The plugin checks subscriptions, pins a client to its client id
and disconnects a deleted client at once. Its ACLs in 2.0 do not expand
``%u``, so every machine gets its own role. This module builds the plugin's
file and its ``$CONTROL`` commands (pure), and sends them as the plugin's
admin user (``DynsecAdmin``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from backend.provisioning.identity import SERVICE_PREFIX, IdentityError, validate_device_id
from backend.provisioning.passwords import PBKDF2_ITERATIONS, SALT_BYTES
from firmware_agent.wire.digits import ascii_int

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
ADMIN_ROLE = "nx-dynsec-admin"
DEFAULT_ADMIN_USER = "nx-dynsec-admin"
BACKEND_ROLE = "nx-backend"
UPWARD_CHANNELS = ("status", "events", "telemetry", "stock", "cmd/result")
SYS_COUNTERS = ("$SYS/broker/publish/messages/dropped", "$SYS/broker/store/messages/count",
                "$SYS/broker/clients/connected")
REPLY_TIMEOUT_S = 10.0

Command = dict[str, Any]


class DynsecError(RuntimeError):
    """The plugin refused a command, or did not answer."""


def _hash(password: str) -> dict[str, Any]:
    """Return the plugin's password fields (PBKDF2-SHA512, as mosquitto_passwd)."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    return {"password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
            "iterations": PBKDF2_ITERATIONS}


def _acl(acltype: str, topic: str, allow: bool = True) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": allow}


def initial_config(admin_user: str, admin_password: str,
                   backend: tuple[str, str, str] | None = None) -> dict[str, Any]:
    """Return the plugin's bootstrap file: deny by default, an admin who may only
    administer, and optionally the backend user as ``(username, password, share_group)``.
    """
    control = "$CONTROL/dynamic-security/#"
    clients = [{"username": admin_user, "roles": [{"rolename": ADMIN_ROLE}],
                **_hash(admin_password)}]
    roles = [{"rolename": ADMIN_ROLE, "acls": [
        _acl("publishClientSend", control), _acl("publishClientReceive", control),
        _acl("subscribePattern", control),
    ]}]
    if backend is not None:
        username, password, share_group = backend
        clients.append({"username": username, "roles": [{"rolename": BACKEND_ROLE}],
                        **_hash(password)})
        roles.append({"rolename": BACKEND_ROLE, "acls": backend_acls(share_group)})
    return {
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                             "subscribe": False, "unsubscribe": True},
        "clients": clients,
        "groups": [],
        "roles": roles,
    }


def machine_role(machine_id: str) -> str:
    """Return the name of ``machine_id``'s own role."""
    return f"machine-{machine_id}"


def machine_acls(machine_id: str) -> list[dict[str, Any]]:
    """A machine's grants: write its own upward topics, read its own ``cmd``; nothing else."""
    base = f"nx/v1/machines/{machine_id}"
    acls = [_acl("publishClientSend", f"{base}/{channel}") for channel in UPWARD_CHANNELS]
    # Everything else, "$share/..." above all, is refused by default (SUBACK 135):
    # a machine in the ingest's share group would make the broker drop events.
    return [*acls, _acl("subscribeLiteral", f"{base}/cmd"),
            _acl("publishClientReceive", f"{base}/cmd")]


def machine_client(machine_id: str, password: str | None) -> dict[str, Any]:
    """A machine's client entry for the plugin's file: pinned client id, its own role.

    ``password`` None makes a certificate-only machine: its CN is its username
    (``use_identity_as_username``) and no password login exists for it.
    """
    validate_device_id(machine_id)
    entry: dict[str, Any] = {"username": machine_id, "clientid": machine_id,
                             "roles": [{"rolename": machine_role(machine_id)}]}
    return {**entry, **_hash(password)} if password is not None else entry


def add_machine_commands(machine_id: str, password: str | None) -> list[Command]:
    """Commands that give a machine its role (only its own topics) and its client.

    ``password`` None adds a certificate-only machine (see ``machine_client``).
    """
    validate_device_id(machine_id)
    role = machine_role(machine_id)
    commands: list[Command] = [{"command": "createRole", "rolename": role}]
    commands += [{"command": "addRoleACL", "rolename": role, **acl}
                 for acl in machine_acls(machine_id)]
    # The client id is pinned to the machine id: nobody else can take over its
    # session, and it cannot take over anybody's (services' ids start with "nx-").
    client: Command = {"command": "createClient", "username": machine_id,
                       "clientid": machine_id, "roles": [{"rolename": role}]}
    if password is not None:
        client["password"] = password
    commands.append(client)
    return commands


def fleet_config(admin: tuple[str, str], services: Mapping[str, str],
                 machines: Mapping[str, str | None], share_group: str) -> dict[str, Any]:
    """Return a complete plugin file: the admin, service users and machines (id -> password).

    What ``initial_config`` plus ``backend_commands`` and ``add_machine_commands``
    would build at run time, written at once (the development broker and tests).
    """
    config = initial_config(*admin)
    config["roles"].append({"rolename": BACKEND_ROLE, "acls": backend_acls(share_group)})
    for username, service_password in services.items():
        config["clients"].append({"username": username, "roles": [{"rolename": BACKEND_ROLE}],
                                  **_hash(service_password)})
    for machine_id, machine_password in machines.items():
        config["roles"].append({"rolename": machine_role(machine_id),
                                "acls": machine_acls(machine_id)})
        config["clients"].append(machine_client(machine_id, machine_password))
    return config


def set_password_command(username: str, password: str) -> Command:
    """The command that replaces a client's password (the old one stops working at once)."""
    return {"command": "setClientPassword", "username": username, "password": password}


def remove_machine_commands(machine_id: str) -> list[Command]:
    """Commands that delete a machine's client (disconnecting it) and its role."""
    return [{"command": "deleteClient", "username": machine_id},
            {"command": "deleteRole", "rolename": machine_role(machine_id)}]


def backend_acls(share_group: str) -> list[dict[str, Any]]:
    """The backend's grants: read the fleet (also through its share group), send commands."""
    upward = [f"nx/v1/machines/+/{channel}" for channel in UPWARD_CHANNELS]
    # Shared subscriptions are checked as the full "$share/<group>/<filter>" string.
    acls = [_acl("subscribeLiteral", f"$share/{share_group}/{topic}") for topic in upward]
    acls += [_acl("subscribePattern", topic) for topic in upward]
    acls += [_acl("publishClientReceive", topic) for topic in upward]
    acls += [_acl("publishClientSend", "nx/v1/machines/+/cmd")]
    # Broker health (backend/provisioning/broker_monitor.py).
    for counter in SYS_COUNTERS:
        acls += [_acl("subscribeLiteral", counter), _acl("publishClientReceive", counter)]
    return acls


def backend_commands(username: str, password: str, share_group: str, *,
                     create_role: bool = True) -> list[Command]:
    """Commands that add a backend user to a running plugin (and its role, unless it exists)."""
    role: list[Command] = [{"command": "createRole", "rolename": BACKEND_ROLE},
                           *({"command": "addRoleACL", "rolename": BACKEND_ROLE, **acl}
                             for acl in backend_acls(share_group))] if create_role else []
    return [*role, {"command": "createClient", "username": username, "password": password,
                    "roles": [{"rolename": BACKEND_ROLE}]}]


class MigrationError(ValueError):
    """A password-file entry the plugin cannot take over as it is."""


def hashed_password(encoded: str) -> dict[str, Any]:
    """Return the plugin's password fields for a password-file ``$7$`` hash.

    Both use PBKDF2-SHA512 with a 12-byte salt, so the hash moves over as it
    is and the machine keeps its password: a migration needs no new TOMLs.
    """
    parts = encoded.split("$")
    iterations = ascii_int(parts[2]) if len(parts) == 5 else None
    if iterations is None or parts[0] or parts[1] != "7":
        raise MigrationError("not a Mosquitto 2 '$7$' (PBKDF2-SHA512) hash; give it a new "
                             "password with `device rotate` after the migration")
    salt, digest = parts[3], parts[4]
    try:
        if len(base64.b64decode(salt, validate=True)) != SALT_BYTES \
                or len(base64.b64decode(digest, validate=True)) != hashlib.sha512().digest_size:
            raise MigrationError("salt or hash has the wrong length")
    except ValueError as exc:
        raise MigrationError(f"salt or hash is not base64: {exc}") from exc
    return {"password": digest, "salt": salt, "iterations": iterations}


def migrated_config(admin: tuple[str, str], password_entries: Mapping[str, str],
                    certified: list[str], share_group: str) -> tuple[dict[str, Any], list[str]]:
    """Return a plugin file for a password-file deployment, and the entries left out.

    Services (``nx-...``) keep their passwords and get the backend's role;
    machines keep theirs, get their own role and a pinned client id;
    ``certified`` machines (a certificate, no password) get their role only.
    """
    config = fleet_config(admin, {}, {}, share_group)
    skipped: list[str] = []
    for username, encoded in sorted(password_entries.items()):
        try:
            fields = hashed_password(encoded)
            if username.startswith(SERVICE_PREFIX):
                config["clients"].append({"username": username,
                                          "roles": [{"rolename": BACKEND_ROLE}], **fields})
                continue
            entry = {**machine_client(username, None), **fields}
        except (MigrationError, IdentityError) as exc:
            skipped.append(f"{username}: {exc}")
            continue
        config["roles"].append({"rolename": machine_role(username),
                                "acls": machine_acls(username)})
        config["clients"].append(entry)
    for machine_id in certified:
        if machine_id in password_entries:
            continue  # one client holds both credentials
        config["roles"].append({"rolename": machine_role(machine_id),
                                "acls": machine_acls(machine_id)})
        config["clients"].append(machine_client(machine_id, None))
    return config, skipped


def client_names(reply: dict[str, Any]) -> list[str]:
    """Return the usernames in a ``listClients`` answer (non-verbose), sorted."""
    data = reply.get("data")
    clients = data.get("clients") if isinstance(data, dict) else None
    if not isinstance(clients, list):
        return []
    return sorted(c if isinstance(c, str) else str(c.get("username", ""))
                  for c in clients if isinstance(c, str | dict))


LIST_CLIENTS: Command = {"command": "listClients", "verbose": False}


def parse_responses(payload: bytes) -> list[dict[str, Any]]:
    """Return the per-command answers in a plugin response (empty if unreadable)."""
    try:
        responses = json.loads(payload)["responses"]
    except (ValueError, KeyError, TypeError):
        return []
    return [r for r in responses if isinstance(r, dict)] if isinstance(responses, list) else []


def _command_index(reply: dict[str, Any]) -> int:
    """Return the position of the command a reply answers (from its correlation data)."""
    return ascii_int(str(reply.get("correlationData", "")).partition(":")[2]) or 0


class DynsecAdmin:
    """Send ``$CONTROL`` commands as the plugin's admin and wait for the answers."""

    def __init__(self, *, host: str, port: int, username: str, password: str,
                 ca_file: str | None = None) -> None:
        self._replies: dict[str, list[dict[str, Any]]] = {}
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._refused: ReasonCode | None = None
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"nx-dynsec-{uuid.uuid4().hex[:8]}",
                                   protocol=mqtt.MQTTv5)
        self._client.username_pw_set(username, password)
        if ca_file:
            self._client.tls_set(ca_certs=ca_file)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._host, self._port = host, port

    def __enter__(self) -> DynsecAdmin:
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        if not self._ready.wait(REPLY_TIMEOUT_S) or self._refused is not None:
            self.close()
            raise DynsecError(f"cannot administer the broker: {self._refused or 'no answer'}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def run(self, commands: list[Command]) -> list[dict[str, Any]]:
        """Send ``commands`` in one request and return the answers, in order.

        Raise ``DynsecError`` listing any refusals.
        """
        token = uuid.uuid4().hex
        tagged = [{**command, "correlationData": f"{token}:{index}"}
                  for index, command in enumerate(commands)]
        self._client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        with self._cond:
            answered = self._cond.wait_for(
                lambda: len(self._replies.get(token, [])) >= len(commands), REPLY_TIMEOUT_S)
            replies = self._replies.pop(token, [])
        if not answered:
            raise DynsecError(f"the dynamic-security plugin answered {len(replies)} of "
                              f"{len(commands)} commands")
        errors = [f"{r.get('command')}: {r['error']}" for r in replies if r.get("error")]
        if errors:
            raise DynsecError("; ".join(errors))
        return sorted(replies, key=_command_index)

    # -- paho callbacks: record only ---------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            self._refused = reason_code
            self._ready.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      reason_codes: list[ReasonCode], properties: Properties) -> None:
        if reason_codes and reason_codes[0].is_failure:
            self._refused = reason_codes[0]
        self._ready.set()

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        # The plugin answers every admin on one topic; keep only what carries
        # a token of ours (the correlationData we put in each command).
        for response in parse_responses(bytes(message.payload)):
            token, _, _ = str(response.get("correlationData", "")).partition(":")
            with self._cond:
                self._replies.setdefault(token, []).append(response)
                self._cond.notify_all()
