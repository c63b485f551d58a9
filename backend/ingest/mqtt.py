"""The thin paho-mqtt adapter of an ingest worker: connect, subscribe, enqueue, ack."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from backend.config import Settings
from backend.ingest.link_probe import LinkProbe, LinkWatch
from backend.ingest.takeover import KEEPALIVE_TIMEOUT, DropWatch, describe_disconnect
from backend.metrics import IngestMetrics
from backend.models import utcnow
from firmware_agent.wire.manual_ack import ConnectionAcks
from firmware_agent.wire.topics import Channel, subscription

log = logging.getLogger(__name__)

SHARED_CHANNELS = (Channel.EVENTS, Channel.TELEMETRY, Channel.CMD_RESULT)
# Retained topics: MQTT v5 sends no retained messages to shared subscriptions,
# so one worker at a time (the holder of the retained-reader role, backend/jobs)
# reads these on a plain subscription of a second, clean-session client.
RETAINED_CHANNELS = (Channel.STATUS, Channel.STOCK)


@dataclass(frozen=True)
class Delivery:
    """A message handed from paho's thread to the writer, with what is needed to ack it."""

    topic: str
    payload: bytes
    received_at: datetime
    mid: int
    qos: int
    generation: int
    retained_reader: bool = False
    """Whether it came over the retained reader's connection (acked there)."""


PUT_WAIT_S = 0.05
STUCK_S = 1.0
"""A network thread in on_message this long is waiting for room, not handing over."""
"""How long paho's thread waits for room in a full inbox before it looks for a stop again."""


class Inbox(queue.Queue[Delivery]):
    """The bounded queue from paho's network thread to the writer.

    When it is full the network thread waits in ``put_waiting`` and reads
    nothing more from the socket, so TCP flow control holds the broker back:
    Mosquitto 2.0 does not keep to our Receive Maximum when acks come in
    batches (docs/decisions.md). A back-pressure episode starts when a put
    finds the inbox full and ends when the writer has emptied it; each is
    logged once, not per message.
    """

    def __init__(self, maxsize: int, metrics: IngestMetrics, name: str = "ingest") -> None:
        if maxsize < 1:
            raise ValueError("an inbox needs room for at least one message")
        super().__init__(maxsize)
        self.metrics = metrics
        self.name = name
        self.high_water = 0
        """The largest depth ever reached, recorded on every put (not sampled)."""
        self._episode_lock = threading.Lock()
        self._pressed_since: float | None = None
        self._episode_waited_s = 0.0

    @property
    def pressed(self) -> bool:
        """Whether a back-pressure episode is going on."""
        return self._pressed_since is not None

    def _put(self, item: Delivery) -> None:
        # Called by Queue.put with the queue's mutex held, so the depth is exact.
        super()._put(item)
        depth = len(self.queue)
        if depth > self.high_water:
            self.high_water = depth

    def put_waiting(self, item: Delivery, stopping: threading.Event) -> bool:
        """Put ``item``, waiting while the inbox is full; False if ``stopping`` came first."""
        try:
            self.put_nowait(item)
            return True
        except queue.Full:
            pass
        self._press()
        started = time.monotonic()
        try:
            # Short waits, not one long one: stop() joins this thread and must
            # not wait for a writer that may be stuck on a dead database.
            while not stopping.is_set():
                try:
                    self.put(item, timeout=PUT_WAIT_S)
                    return True
                except queue.Full:
                    continue
            return False
        finally:
            waited = time.monotonic() - started
            self.metrics.inbox_blocked_seconds.inc(waited)
            with self._episode_lock:
                self._episode_waited_s += waited

    def get(self, block: bool = True, timeout: float | None = None) -> Delivery:
        """Take the oldest message; the take that empties the inbox ends an episode."""
        item = super().get(block, timeout)
        # Unlocked reads first: this runs once per message on the writer's thread.
        if self._pressed_since is not None and not self.queue:
            self._relieve()
        return item

    def _press(self) -> None:
        with self._episode_lock:
            if self._pressed_since is not None:
                return
            self._pressed_since = time.monotonic()
            self._episode_waited_s = 0.0
        self.metrics.backpressure_episodes.inc()
        log.warning(
            "%s: inbox full (%d messages); reading from the broker paused until the "
            "writer catches up",
            self.name,
            self.maxsize,
        )

    def _relieve(self) -> None:
        with self._episode_lock:
            if self._pressed_since is None:
                return
            lasted = time.monotonic() - self._pressed_since
            waited = self._episode_waited_s
            self._pressed_since = None
        log.info(
            "%s: inbox drained; back-pressure over after %.1f s (network thread waited %.1f s)",
            self.name,
            lasted,
            waited,
        )


def subscriptions(settings: Settings) -> list[str]:
    """Return the shared topic filters every worker subscribes to."""
    share = f"$share/{settings.ingest_share_group}/"
    return [share + subscription(c) for c in SHARED_CHANNELS]


def retained_subscriptions() -> list[str]:
    """Return the plain topic filters of the retained reader."""
    return [subscription(c) for c in RETAINED_CHANNELS]


class IngestClient:
    """Owns the paho client; its callbacks only enqueue and never raise.

    ``_on_message`` may wait for room in the inbox (back-pressure), but never
    past ``stop()``.
    """

    def __init__(
        self, settings: Settings, worker_index: int, inbox: Inbox, *, retained_reader: bool = False
    ) -> None:
        self.settings = settings
        self.retained_reader = retained_reader
        suffix = "-retained" if retained_reader else ""
        self.client_id = f"{settings.ingest_client_id_prefix}-{worker_index}{suffix}"
        self.topics = retained_subscriptions() if retained_reader else subscriptions(settings)
        self.inbox = inbox
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._stopping = threading.Event()
        self._acks = ConnectionAcks()
        self._takeovers = DropWatch()
        self._client = self._make_client()
        self._delivering_since = 0.0
        """When paho's network thread entered on_message (0: it is not in there). Waiting
        for room in the inbox, it reads nothing, so a late answer says nothing then."""
        self._gave_up = threading.Event()
        """Set when the link probe shut the socket: the disconnect that follows is ours."""
        probe_s = settings.ingest_link_probe_s or float(settings.mqtt_keepalive_s)
        self._watch = LinkWatch(
            self._client, LinkProbe(probe_s), self.client_id,
            connected=self._client.is_connected,
            reading=self._reading,
            on_dead=lambda _waited: self._gave_up.set())

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.username_pw_set(
            self.settings.mqtt_username, self.settings.mqtt_password.get_secret_value()
        )
        if self.settings.mqtt_tls_ca_file is not None:
            client.tls_set(ca_certs=str(self.settings.mqtt_tls_ca_file))
        client.reconnect_delay_set(
            int(max(1, self.settings.ingest_reconnect_min_s)),
            int(max(1, self.settings.ingest_reconnect_max_s)),
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        return client

    def start(self) -> None:
        """Connect in the background; paho's thread reconnects on its own."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        # The retained reader keeps no session: when its holder dies nothing stale
        # waits on the broker for it, and the next holder's fresh subscription
        # gets every machine's latest status and stock as retained messages.
        props.SessionExpiryInterval = (
            0 if self.retained_reader else self.settings.ingest_session_expiry_s
        )
        props.ReceiveMaximum = self.settings.ingest_receive_maximum
        self._stopping.clear()
        self._client.connect_async(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            keepalive=self.settings.mqtt_keepalive_s,
            clean_start=self.retained_reader,
            properties=props,
        )
        self._client.loop_start()
        self._watch.start()

    def stop(self) -> None:
        """Disconnect (the session and its queue stay on the broker) and stop the thread."""
        # First release a network thread waiting for room in a full inbox, or
        # loop_stop() would join it for as long as the writer is stuck. The
        # message it held is never acked, so the broker sends it again.
        self._stopping.set()
        self._watch.stop()
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge a committed message, unless it came over an earlier connection."""
        # One from an earlier connection is not sent: the broker resends that message
        # on this connection and the unique key drops it.
        self._acks.ack(self._client, delivery.mid, delivery.qos, delivery.generation)

    # -- paho callbacks: catch everything; only on_message may wait (for room) ---------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        try:
            if reason.is_failure:
                log.warning("broker refused %s: %s", self.client_id, reason)
                return
            # Retain handling 1: retained messages only when the subscription is
            # new, not on every reconnect of a persistent session (the retained
            # reader's session is never persistent, so it gets them each time).
            options = SubscribeOptions(qos=1, retainHandling=1)
            client.subscribe([(topic, options) for topic in self.topics])
            self.connected.set()
            log.info(
                "%s connected to %s:%d",
                self.client_id,
                self.settings.mqtt_host,
                self.settings.mqtt_port,
            )
        except Exception:
            log.exception("on_connect failed")

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        try:
            refused = [str(r) for r in reasons if r.is_failure]
            if refused:
                log.error("subscriptions refused for %s: %s", self.client_id, refused)
            else:
                log.info("%s subscribed to %s", self.client_id, ", ".join(self.topics))
                self.subscribed.set()
        except Exception:
            log.exception("on_subscribe failed")

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        try:
            self._acks.next_connection()
            self.connected.clear()
            self.subscribed.clear()
            # The probe gave a silent link up: a keepalive timeout of ours, not a takeover.
            code = KEEPALIVE_TIMEOUT if self._gave_up.is_set() else int(reason.value)
            self._gave_up.clear()
            # A takeover is someone else holding this worker's session: never just INFO.
            level, fmt, args = describe_disconnect(
                self.client_id, code, stopping=self._stopping.is_set(),
                watch=self._takeovers, now=time.monotonic())
            log.log(level, fmt + ": %s", *args, reason)
        except Exception:
            log.exception("on_disconnect failed")

    def _on_unsubscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        _reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        try:
            self._watch.probe.answered(mid)  # the only UNSUBSCRIBE it sends is the probe
        except Exception:
            log.exception("on_unsubscribe failed")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._delivering_since = time.monotonic()
        try:
            generation = self._acks.current()
            # Never wait while holding the acks' lock: the writer's ack() takes it,
            # and only the writer can make room. Acks it queues meanwhile go out
            # when this thread is back in paho's loop. If the wait outlasts the
            # keepalive the broker drops us: the generation check in ack(), and
            # paho discarding unsent packets on reconnect, keep late acks off the
            # next connection; the broker resends and the unique key drops them.
            self.inbox.put_waiting(
                Delivery(msg.topic, bytes(msg.payload), utcnow(), msg.mid, msg.qos, generation,
                         self.retained_reader),
                self._stopping,
            )
        except Exception:
            log.exception("could not enqueue a message on %r", getattr(msg, "topic", "?"))
        finally:
            self._delivering_since = 0.0

    def _reading(self) -> bool:
        """Whether paho's network thread is free to read (not stuck in a full inbox)."""
        since = self._delivering_since
        return since == 0.0 or time.monotonic() - since < STUCK_S
