"""Acknowledge QoS 1 messages by hand, and only on the connection that delivered them.

The agent (commands) and the backend's ingest workers (events) both take
messages with paho's ``manual_ack`` and acknowledge them once what they imply
is durable. A packet id is only meaningful on the connection that carried
it: after a reconnect the broker resends every unacknowledged message, and an
acknowledgement with an old id could hit an unrelated message. So each
message is tagged with the number of the connection it arrived on, and an
acknowledgement for an earlier connection is dropped.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode


class ConnectionAcks:
    """Numbers a client's connections and sends the acknowledgements still valid."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection = 0

    def current(self) -> int:
        """The number of the connection a message arriving now came over."""
        with self._lock:
            return self._connection

    def next_connection(self) -> None:
        """Call on every connect and disconnect: earlier tags stop being valid."""
        with self._lock:
            self._connection += 1

    def ack(self, client: mqtt.Client, mid: int, qos: int, connection: int) -> MQTTErrorCode | None:
        """Acknowledge ``mid``; None (nothing sent) if it came over an earlier connection."""
        if qos == 0:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        # Under the lock, so that a reconnect cannot slip in between check and send.
        with self._lock:
            if connection != self._connection:
                return None
            return client.ack(mid, qos)
