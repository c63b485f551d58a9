"""Helpers for the broker tests: waiting on conditions and a small recording MQTT client."""

from __future__ import annotations

import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from backend.provisioning.identity import SERVICE_PREFIX
from tests.waiting import wait_until as shared_wait_until

WAIT_S = 30.0
"""Generous deadline: the test machine has 2 cores shared with other test runs."""


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S,
               message: str = "condition") -> None:
    """Poll ``predicate`` until it is true, or fail after ``timeout`` seconds."""
    shared_wait_until(predicate, timeout, what=message)


def wait_saved(data_dir: Path, payload: bytes) -> None:
    """Wait until the broker's store in ``data_dir`` holds ``payload``.

    Mosquitto 2.0 sends a PUBACK while handling the PUBLISH and saves its store at the
    end of that loop iteration, so a kill -9 in between can lose the last message
    acknowledged (broker_config/mosquitto.conf says so). What it promises is that
    nothing it saved is lost: a test of that waits for the save, then kills.
    """
    store = data_dir / "mosquitto.db"
    wait_until(lambda: store.exists() and payload in store.read_bytes(),
               message="the broker saving the last acknowledged message")


@dataclass
class TlsFiles:
    """Client-side TLS material: the CA to trust and an optional client pair."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None


@dataclass
class Probe:
    """A paho MQTT v5 client that records what the broker answers.

    Callbacks only append to thread-safe structures; the test thread waits.
    """

    host: str
    port: int
    username: str | None
    password: str | None
    client_id: str = ""
    clean_start: bool = True
    session_expiry_s: int = 0
    tls: TlsFiles | None = None
    connack: ReasonCode | None = None
    disconnected: threading.Event = field(default_factory=threading.Event)
    disconnect_reason: ReasonCode | None = None
    messages: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)
    _pubacks: dict[int, ReasonCode] = field(default_factory=dict)
    _subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    client: mqtt.Client = field(init=False)

    def __post_init__(self) -> None:
        if not self.client_id and self.username and not self.username.startswith(SERVICE_PREFIX):
            # A machine must connect with its own id as client id (the broker pins it).
            self.client_id = self.username
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
        )
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        if self.tls is not None:
            self.client.tls_set(
                ca_certs=self.tls.ca_file,
                certfile=self.tls.cert_file,
                keyfile=self.tls.key_file,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- callbacks (record only) -------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        self.connack = reason_code

    def _on_disconnect(self, client: mqtt.Client, userdata: object,
                       flags: mqtt.DisconnectFlags, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        self.disconnect_reason = reason_code
        self.disconnected.set()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int,
                    reason_code: ReasonCode, properties: Properties) -> None:
        with self._lock:
            self._pubacks[mid] = reason_code

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      reason_codes: list[ReasonCode], properties: Properties) -> None:
        with self._lock:
            self._subacks[mid] = list(reason_codes)

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        self.messages.put(message)

    # -- actions (block with a deadline) -----------------------------------------------

    def connect(self, timeout: float = WAIT_S) -> ReasonCode:
        """Connect, wait for the CONNACK or a refusal, and return its reason code."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        self.client.connect(self.host, self.port, keepalive=30,
                            clean_start=self.clean_start, properties=props)
        self.client.loop_start()
        wait_until(lambda: self.connack is not None or self.disconnected.is_set(), timeout,
                   f"CONNACK for {self.username}")
        if self.connack is None or self.connack.is_failure:
            # Stop paho from retrying a refused connection in the background.
            self.close()
        return self.connack if self.connack is not None else ReasonCode(
            PacketTypes.CONNACK, "Unspecified error")

    def publish(self, topic: str, payload: bytes | str, qos: int = 1,
                timeout: float = WAIT_S) -> ReasonCode | None:
        """Publish and, for QoS 1, wait for the PUBACK and return its reason code."""
        info = self.client.publish(topic, payload, qos=qos)
        if qos == 0:
            return None
        wait_until(lambda: info.mid in self._pubacks, timeout, f"PUBACK for {topic}")
        with self._lock:
            return self._pubacks.pop(info.mid)

    def publish_many(self, topic: str, payloads: list[bytes], window: int = 100,
                     timeout: float = 60.0) -> list[ReasonCode]:
        """Publish QoS 1 messages, at most ``window`` unacknowledged at a time."""
        pending: list[int] = []
        codes: list[ReasonCode] = []
        deadline = time.monotonic() + timeout
        for payload in payloads:
            while len(pending) >= window:
                self._collect(pending, codes, deadline)
            pending.append(int(self.client.publish(topic, payload, qos=1).mid))
        while pending:
            self._collect(pending, codes, deadline)
        return codes

    def _collect(self, pending: list[int], codes: list[ReasonCode], deadline: float) -> None:
        with self._lock:
            done = [mid for mid in pending if mid in self._pubacks]
            for mid in done:
                codes.append(self._pubacks.pop(mid))
                pending.remove(mid)
        if not done:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(pending)} PUBACKs still missing")
            time.sleep(0.005)  # ok: polling for acknowledgements with a deadline

    def subscribe(self, topic_filter: str, qos: int = 1,
                  timeout: float = WAIT_S) -> list[ReasonCode]:
        """Subscribe and return the SUBACK reason codes."""
        _, maybe_mid = self.client.subscribe(topic_filter, qos=qos)
        mid = int(maybe_mid) if maybe_mid is not None else -1
        wait_until(lambda: mid in self._subacks, timeout, f"SUBACK for {topic_filter}")
        with self._lock:
            return self._subacks.pop(mid)

    def drain(self, count: int, timeout: float = WAIT_S) -> list[mqtt.MQTTMessage]:
        """Wait for ``count`` messages and return them."""
        got: list[mqtt.MQTTMessage] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"received {len(got)} of {count} messages")
            try:
                got.append(self.messages.get(timeout=min(remaining, 0.5)))
            except queue.Empty:
                continue
        return got

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()
