"""The agent's MQTT connection: paho-mqtt 2 (MQTT v5) wrapped in one place.

Callbacks run on paho's network thread; they never block and never raise:
each one only records what happened on a queue (PUBACKs, commands) or an
event (connection) for the agent's own threads, inside a catch-all that
logs. The retained ``online`` status is published on every connect and the
Last Will says ``offline``; ``close`` asks the broker to send the Will
(DISCONNECT reason 0x04) so that a clean stop reads the same as a crash.

Commands are acknowledged by hand (paho ``manual_ack``): the agent calls
``ack`` only once a command's result is in the durable outbox, so a command
that arrives just before a crash is sent again by the broker when the
persistent session resumes, instead of being lost (docs/nxlink.md, §10).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from firmware_agent.config import AgentSettings
from firmware_agent.wire.manual_ack import ConnectionAcks
from firmware_agent.wire.payloads import MachineState, Status
from firmware_agent.wire.topics import Channel, machine_topic

log = logging.getLogger(__name__)

DISCONNECT_WITH_WILL = 0x04


class UplinkConfigError(ValueError):
    """The TLS files named in the settings cannot be used."""


@dataclass(frozen=True, slots=True)
class CommandDelivery:
    """A message from the ``cmd`` topic, with what it takes to acknowledge it later."""

    payload: bytes
    mid: int
    qos: int
    generation: int
    """The connection it came over; an acknowledgement is only valid on that one."""


@dataclass(frozen=True, slots=True)
class PubAck:
    """The broker acknowledged (or refused) publish ``mid``."""

    mid: int
    ok: bool
    reason: str


class Uplink:
    """One paho client for one machine."""

    def __init__(self, settings: AgentSettings, *, boot_id: int) -> None:
        self.settings = settings
        self.boot_id = boot_id
        self.firmware: str | None = None
        self.acks: queue.SimpleQueue[PubAck] = queue.SimpleQueue()
        self.commands: queue.SimpleQueue[CommandDelivery] = queue.SimpleQueue()
        self.connected = threading.Event()
        self.wakeup = threading.Event()
        """Set whenever there is news for the outbox pump (an ACK, a connect)."""
        self.connects = 0
        self._closing = False
        self._acks = ConnectionAcks()
        self._client = self._make_client()

    def _topic(self, channel: Channel) -> str:
        return machine_topic(self.settings.machine_id, channel)

    def _status(self, state: MachineState) -> bytes:
        return Status(machine_id=self.settings.machine_id, boot_id=self.boot_id, state=state,
                      firmware=self.firmware).to_bytes()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.machine_id,
            protocol=mqtt.MQTTv5,
            # PUBACK for a command only after its result is durable (see ``ack``).
            manual_ack=True,
        )
        client.username_pw_set(s.username, s.mqtt_password.get_secret_value() or None)
        client.will_set(self._topic(Channel.STATUS), self._status(MachineState.OFFLINE),
                        qos=1, retain=True)
        if s.tls_ca_file or s.tls_cert_file:
            self._set_tls(client)
        client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)
        # We bound in-flight messages ourselves; let paho send all of those at once.
        client.max_inflight_messages_set(s.max_inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _set_tls(self, client: mqtt.Client) -> None:
        """Load the CA and client certificate; UplinkConfigError names what is wrong."""
        s = self.settings
        files = {"tls_ca_file": s.tls_ca_file, "tls_cert_file": s.tls_cert_file,
                 "tls_key_file": s.tls_key_file}
        for name, path in files.items():
            if path is None:
                continue
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                raise UplinkConfigError(f"{name} {path}: {exc.strerror}") from exc
        try:
            client.tls_set(
                ca_certs=str(s.tls_ca_file) if s.tls_ca_file else None,
                certfile=str(s.tls_cert_file) if s.tls_cert_file else None,
                keyfile=str(s.tls_key_file) if s.tls_key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            named = ", ".join(f"{k} {v}" for k, v in files.items() if v is not None)
            raise UplinkConfigError(f"TLS files not usable ({named}): {exc}") from exc

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho reconnects with capped exponential backoff."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.settings.mqtt_session_expiry_s
        log.info("connecting to mqtt %s:%d as %s", self.settings.mqtt_host,
                 self.settings.mqtt_port, self.settings.username)
        # A persistent session keeps commands queued for us while we are away.
        self._client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port,
                                   keepalive=self.settings.mqtt_keepalive_s,
                                   clean_start=False, properties=props)
        self._client.loop_start()

    def close(self) -> None:
        """Disconnect so the broker publishes our Last Will, and stop paho's thread."""
        self._closing = True
        self._client.disconnect(
            reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=DISCONNECT_WITH_WILL)
        )
        self._client.loop_stop()
        self.connected.clear()

    # --- publishing -----------------------------------------------------------------------

    def set_firmware(self, firmware: str | None) -> None:
        """Record the controller's firmware and refresh the retained status if it changed."""
        if firmware == self.firmware:
            return
        self.firmware = firmware
        if self.connected.is_set():
            self._client.publish(self._topic(Channel.STATUS), self._status(MachineState.ONLINE),
                                 qos=1, retain=True)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        """Hand a message to paho; return its mid, or None if paho did not take it."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        # NO_CONN still means queued: paho sends it after the next CONNACK.
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("paho refused a publish on %s: %s", topic, mqtt.error_string(info.rc))
            return None
        return int(info.mid)

    def ack(self, delivery: CommandDelivery) -> bool:
        """Acknowledge a command to the broker; False if it came over an earlier connection.

        MQTT forbids acknowledging a message on another connection than the one
        that carried it; the broker sends such a command again when the session
        resumes, and the agent answers it from its record of handled commands
        (docs/nxlink.md, §10).
        """
        rc = self._acks.ack(self._client, delivery.mid, delivery.qos, delivery.generation)
        if rc is None:
            log.info("command mid %d came over an earlier connection; the broker resends it",
                     delivery.mid)
            return False
        if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("paho refused to acknowledge command mid %d: %s", delivery.mid,
                        mqtt.error_string(rc))
            return False
        return True

    # --- callbacks (paho's thread: record and return) -----------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        try:
            if reason_code.is_failure:
                log.warning("mqtt connection refused: %s", reason_code)
                return
            self._acks.next_connection()
            self.connects += 1
            log.info("mqtt connected (session present: %s)", flags.session_present)
            client.subscribe(self._topic(Channel.CMD), qos=1)
            client.publish(self._topic(Channel.STATUS), self._status(MachineState.ONLINE),
                           qos=1, retain=True)
            self.connected.set()
            self.wakeup.set()
        except Exception:
            log.exception("error in mqtt on_connect")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any,
                       flags: mqtt.DisconnectFlags, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        try:
            self.connected.clear()
            self._acks.next_connection()
            if not self._closing:
                log.warning("mqtt disconnected (%s); reconnecting", reason_code)
        except Exception:
            log.exception("error in mqtt on_disconnect")

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        try:
            self.acks.put(PubAck(mid, not reason_code.is_failure, str(reason_code)))
            self.wakeup.set()
        except Exception:
            log.exception("error in mqtt on_publish")

    def _on_message(self, client: mqtt.Client, userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        try:
            self.commands.put(CommandDelivery(bytes(message.payload), message.mid, message.qos,
                                              self._acks.current()))
        except Exception:
            log.exception("error in mqtt on_message")
