"""A recording MQTT v5 subscriber for the simulator tests (the backend's view of the fleet)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware_agent.wire.topics import Channel, parse_topic, subscription
from tests.waiting import wait_until

UPWARD = (Channel.STATUS, Channel.EVENTS, Channel.TELEMETRY, Channel.STOCK)


class FleetWatch:
    """Subscribe to every machine's upward topics and keep what arrives."""

    def __init__(
        self, host: str, port: int, username: str, password: str, *, persistent: bool = False
    ) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[str, Channel, bytes, bool]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id="sim-test-watch"
        )
        self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._host, self._port = host, port
        # A persistent session survives a broker restart: what the machines publish
        # before we are back is queued for us.
        self._persistent = persistent
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(subscription(channel), 1) for channel in UPWARD])

    def _on_subscribe(self, *_: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        machine_id, channel = parse_topic(msg.topic)
        with self._lock:
            self._messages.append((machine_id, channel, bytes(msg.payload), bool(msg.retain)))

    def start(self) -> FleetWatch:
        """Connect and wait until subscribed."""
        properties = None
        if self._persistent:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
        self._client.connect(
            self._host, self._port, clean_start=not self._persistent, properties=properties
        )
        self._client.loop_start()
        wait_until(self._subscribed.is_set, what="the watcher's SUBACK")
        return self

    def payloads(self, channel: Channel, machine_id: str | None = None) -> list[bytes]:
        """Return payloads received on ``channel`` (for one machine or all), in order."""
        with self._lock:
            return [
                raw
                for mid, ch, raw, _ in self._messages
                if ch is channel and (machine_id is None or mid == machine_id)
            ]

    def __enter__(self) -> FleetWatch:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()
