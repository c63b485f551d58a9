"""End a revoked machine's live connection and stored session by taking over its client id.

A broker reload refuses a revoked credential at the next CONNECT, and drops
password clients at once, but a machine already connected with a (now
revoked) certificate stays connected, and a dropped client's persistent
session (its queued commands) outlives it until the session expires. MQTT
lets a new connection with the same client id replace the old one: the
broker disconnects the old holder. Connecting with a clean start and no
session expiry, then leaving, also discards the stored session.

On the production machine listener client ids are forced to the username,
so a machine's client id is its machine id, and no machine can do this to
another; service users on the service listeners can.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

CONNECT_TIMEOUT_S = 10.0


class KickError(RuntimeError):
    """The takeover connection was refused or timed out."""


@dataclass(frozen=True)
class BrokerLogin:
    """How a service reaches the broker."""

    host: str
    port: int
    username: str
    password: str
    ca_file: str | None = None


def take_over_session(login: BrokerLogin, client_id: str,
                      timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Connect as ``client_id`` with a clean start, then disconnect: the old holder is gone."""
    connected = threading.Event()
    outcome: list[ReasonCode] = []

    def on_connect(client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                   reason_code: ReasonCode, properties: Properties | None) -> None:
        outcome.append(reason_code)
        connected.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(login.username, login.password)
    if login.ca_file:
        client.tls_set(ca_certs=login.ca_file)
    client.on_connect = on_connect
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    try:
        client.connect(login.host, login.port, keepalive=30, clean_start=True,
                       properties=props)
    except OSError as exc:
        raise KickError(f"cannot reach the broker at {login.host}:{login.port}: {exc}"
                        ) from exc
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise KickError(f"no CONNACK from {login.host}:{login.port} within {timeout}s")
        if outcome[0].is_failure:
            raise KickError(f"broker refused {login.username}: {outcome[0]}")
    finally:
        client.disconnect()
        client.loop_stop()
