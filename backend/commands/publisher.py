"""Publish commands on machines' ``cmd`` topics (QoS 1, with an MQTT v5 message expiry)."""

from __future__ import annotations

import logging
import os
import socket
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backend.commands.store import Outgoing
from backend.config import Settings
from firmware_agent.wire.topics import Channel, machine_topic

log = logging.getLogger(__name__)

MAX_QUEUED = 1000
"""Copies paho may hold while the broker is away; past it a publish fails and the
resend timer tries again (paho drops silently past 65,535, see DESIGN.md)."""


class CommandPublisher(Protocol):
    """Something that hands one command copy to the broker."""

    def publish(self, item: Outgoing) -> bool:
        """Queue ``item`` for the broker; False if it was not taken."""
        ...


class MqttCommandPublisher:
    """A paho client of its own (clean session: nothing to resume, the table is the queue)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Unique per process, so that replicas never take over each other's connection.
        prefix = settings.commands_client_id_prefix
        self.client_id = f"{prefix}-{socket.gethostname()}-{os.getpid()}"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5)
        client.username_pw_set(settings.mqtt_username,
                               settings.mqtt_password.get_secret_value())
        if settings.mqtt_tls_ca_file is not None:
            client.tls_set(ca_certs=str(settings.mqtt_tls_ca_file))
        client.max_queued_messages_set(MAX_QUEUED)
        client.reconnect_delay_set(1, 30)
        self._client = client

    def start(self) -> None:
        """Connect in the background; paho reconnects on its own."""
        self._client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port,
                                   keepalive=self.settings.mqtt_keepalive_s, clean_start=True)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect and stop paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, item: Outgoing) -> bool:
        """Queue one copy; paho sends it (now or after reconnecting) and waits for the PUBACK."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        # The broker drops a copy still queued for an offline machine at the expiry,
        # so an expired command is never carried out late.
        props.MessageExpiryInterval = item.expiry_s
        info = self._client.publish(machine_topic(item.machine_id, Channel.CMD), item.payload,
                                    qos=1, properties=props)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("command %s to %s not queued: %s", item.command_id, item.machine_id,
                        mqtt.error_string(info.rc))
            return False
        return True
