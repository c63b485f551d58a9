"""Notice a link that swallows the worker's packets while the broker's still arrive.

paho-mqtt 2.2 gives a connection up (``Client._check_keepalive``) only when
nothing at all arrived for a keepalive after an unanswered PINGREQ: any byte
from the broker counts as life. On a link that stalls one way (the worker's
PUBACKs and PINGREQs lost, the broker's messages still coming; the half-open
fault of tests/faults) a connection that keeps receiving, such as the
retained reader fed a stock snapshot every few seconds, is never given up by
the worker. Measured here with a 5 s keepalive and a snapshot a second: the
client did not give up in 25 s; the broker dropped it after 9 s, and only
because Mosquitto checks keepalives itself (1.5 keepalives, looked at every
5 s: src/keepalive.c in 2.0). With the default 30 s keepalive that is up to
50 s of acks lost into the link, and nothing at all if the broker's FIN does
not come back either.

So each connection asks the broker a question of its own and gives up when
the answer is late: an UNSUBSCRIBE from a topic it never subscribed to
(``PROBE_TOPIC``; the broker answers UNSUBACK, "no subscription existed" or
"not authorized", and changes nothing). ``LinkProbe`` is the bookkeeping
(pure, the caller passes the clock); ``LinkWatch`` is the thread that sends
probes and shuts a dead connection's socket so that paho reconnects.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

PROBE_TOPIC = "nx/v1/ingest/link-probe"
"""Never subscribed to by anyone: unsubscribing from it changes nothing on the broker."""
CHECK_FLOOR_S = 0.05


class LinkProbe:
    """Which probe is unanswered and since when; says when the link is to be given up.

    One probe at a time, sent ``interval_s`` after the previous one was sent;
    the link is dead when a probe is unanswered for ``timeout_s``.
    """

    def __init__(self, timeout_s: float, interval_s: float | None = None) -> None:
        self.timeout_s = timeout_s
        self.interval_s = timeout_s / 2 if interval_s is None else interval_s
        self._pending: tuple[int, float] | None = None
        self._answered_early: set[int] = set()
        self._last_sent = float("-inf")
        self._lock = threading.Lock()

    def due(self, now: float) -> bool:
        """Whether a probe should be sent now."""
        with self._lock:
            return self._pending is None and now - self._last_sent >= self.interval_s

    def sent(self, mid: int, now: float) -> None:
        """Note a probe sent with message id ``mid``."""
        with self._lock:
            self._last_sent = now
            if mid in self._answered_early:
                # The answer came before the sender got here.
                self._answered_early.discard(mid)
                return
            self._pending = (mid, now)

    def answered(self, mid: int) -> None:
        """Note the broker's answer to ``mid`` (paho's network thread)."""
        with self._lock:
            if self._pending is not None and self._pending[0] == mid:
                self._pending = None
            else:
                self._answered_early.add(mid)

    def overdue(self, now: float) -> float | None:
        """Seconds the pending probe has waited, if that is ``timeout_s`` or more."""
        with self._lock:
            if self._pending is None:
                return None
            waited = now - self._pending[1]
            return waited if waited >= self.timeout_s else None

    def reset(self) -> None:
        """Forget what is pending: a new connection, or one that could not read answers."""
        with self._lock:
            self._pending = None
            self._answered_early.clear()
            self._last_sent = float("-inf")


class LinkWatch:
    """Send probes on a connected client and close its socket when one goes unanswered.

    ``connected()`` says when probing makes sense; ``reading()`` is False while
    paho's network thread cannot read (waiting for room in the inbox), when a
    late answer says nothing about the link. ``on_dead`` runs just before the
    socket is shut (the client notes why it is about to lose the connection).
    """

    def __init__(self, client: mqtt.Client, probe: LinkProbe, name: str, *,
                 connected: Callable[[], bool], reading: Callable[[], bool],
                 on_dead: Callable[[float], None]) -> None:
        self.probe = probe
        self._client = client
        self._name = name
        self._connected = connected
        self._reading = reading
        self._on_dead = on_dead
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start probing in a thread of its own."""
        self._stop.clear()
        self.probe.reset()
        self._thread = threading.Thread(target=self._run, name=f"{self._name}-probe",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop probing (before the client disconnects)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        step = max(CHECK_FLOOR_S, self.probe.timeout_s / 10)
        while not self._stop.wait(step):
            try:
                self.check(time.monotonic())
            except Exception:  # the watch must outlive any one bad check
                log.exception("%s: link probe failed", self._name)

    def check(self, now: float) -> None:
        """Give the link up if a probe is overdue, else send one if it is time."""
        if not self._connected() or not self._reading():
            self.probe.reset()
            return
        waited = self.probe.overdue(now)
        if waited is not None:
            log.warning("%s: no answer from the broker for %.1f s while its messages may "
                        "still arrive (a link stalled one way); giving the connection up",
                        self._name, waited)
            self.probe.reset()
            self._on_dead(waited)
            self._shut_socket()
            return
        if self.probe.due(now):
            rc, mid = self._client.unsubscribe(PROBE_TOPIC)
            if rc == mqtt.MQTT_ERR_SUCCESS and mid is not None:
                self.probe.sent(mid, now)

    def _shut_socket(self) -> None:
        # paho's own loop then reads end-of-file, reports the connection lost and
        # reconnects; closing the socket under it instead would race with that loop.
        sock = self._client.socket()
        if not isinstance(sock, socket.socket):  # None (gone), or a websocket: not ours
            return
        with contextlib.suppress(OSError):  # already gone: paho has noticed on its own
            sock.shutdown(socket.SHUT_RDWR)
