"""Watch the broker's dropped-message counter and report every increase loudly.

Mosquitto drops messages for a client whose queue is full (``max_queued_messages``
or ``max_queued_bytes``), e.g. the ingest session during a backend outage
longer than the queue was sized for. The publishing machine was already
acknowledged and has deleted the message from its outbox, so nothing else
will tell us: the broker counts the drops in
``$SYS/broker/publish/messages/dropped`` (retained, refreshed every
``sys_interval``), and this monitor turns each increase into a WARNING log
line with the counts and a ``DropReport`` for whoever raises the alert.
The backend's per-machine seq-gap detection then names the machines affected.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from firmware_agent.wire.digits import ascii_int

log = logging.getLogger(__name__)

DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
KEEPALIVE_S = 30
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class DropReport:
    """Messages the broker dropped since the previous report."""

    new_drops: int
    total: int
    broker_restarted: bool = False


class DropCounter:
    """Turn successive counter readings into reports of new drops (pure)."""

    def __init__(self) -> None:
        self._last: int | None = None

    def observe(self, value: int) -> DropReport | None:
        """Return a report if ``value`` shows drops not reported yet."""
        last, self._last = self._last, value
        if last is None or value < last:
            # First reading, or the broker restarted and its counter began at
            # zero again: everything it shows now is unreported.
            return DropReport(value, value, broker_restarted=last is not None) if value else None
        if value > last:
            return DropReport(value - last, value)
        return None


def parse_counter(payload: bytes) -> int | None:
    """Return the integer in a ``$SYS`` payload, or None if it is not one."""
    text = payload.decode("ascii", errors="replace").strip()
    return ascii_int(text)


class BrokerMonitor:
    """Subscribe to the broker's drop counter and report increases.

    ``on_drop`` runs on the monitor's own thread (never paho's), so it may
    write to the database; its exceptions are logged and the monitor goes on.
    """

    def __init__(self, *, host: str, port: int, username: str, password: str,
                 on_drop: Callable[[DropReport], None] | None = None,
                 client_id: str = "nx-broker-monitor", ca_file: str | None = None,
                 keepalive_s: int = KEEPALIVE_S) -> None:
        self._host, self._port = host, port
        self._keepalive_s = keepalive_s
        self._on_drop = on_drop
        self._counter = DropCounter()
        self.last_total: int | None = None
        """The broker's counter as last read (None until the first reading arrives)."""
        self._reports: queue.Queue[DropReport | None] = queue.Queue()
        self._thread = threading.Thread(target=self._dispatch, name="nx-broker-monitor",
                                        daemon=True)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=mqtt.MQTTv5)
        self._client.username_pw_set(username, password)
        if ca_file:
            self._client.tls_set(ca_certs=ca_file)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Connect in the background and start reporting."""
        self._thread.start()
        self._client.connect_async(self._host, self._port, keepalive=self._keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect and stop the dispatcher (a no-op if never started)."""
        if not self._thread.is_alive():
            return
        self._client.disconnect()
        self._client.loop_stop()
        self._reports.put(None)
        self._thread.join(STOP_TIMEOUT_S)

    # -- paho callbacks: cheap, never raise --------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            log.warning("broker monitor refused by %s:%d: %s", self._host, self._port,
                        reason_code)
            return
        # Subscribing again on every connect also catches a broker restart.
        client.subscribe(DROPPED_TOPIC, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        try:
            value = parse_counter(bytes(message.payload))
            if value is None:
                log.warning("unreadable %s payload %r", message.topic, message.payload[:40])
                return
            self.last_total = value
            report = self._counter.observe(value)
            if report is not None:
                self._reports.put(report)
        except Exception:  # a paho callback must never raise: it would kill the loop
            log.exception("broker monitor failed on a %s message", message.topic)

    # -- dispatcher thread -------------------------------------------------------------

    def _dispatch(self) -> None:
        while (report := self._reports.get()) is not None:
            log.warning(
                "BROKER DROPPED %d MESSAGES (%d since broker start%s): a client queue "
                "overflowed (max_queued_messages/max_queued_bytes); acknowledged events "
                "are lost and will show as delivery gaps",
                report.new_drops, report.total,
                ", broker restarted" if report.broker_restarted else "",
            )
            if self._on_drop is None:
                continue
            try:
                self._on_drop(report)
            except Exception:  # the handler is someone else's code; keep monitoring
                log.exception("drop handler failed for %s", report)
