"""Recognise an ingest session being taken over, and a reconnect loop, from disconnects.

Mosquitto 2.0.15 and later tell the older connection why (DISCONNECT reason
142, session taken over); 2.0.11 just closes its socket, so there a takeover
looks like a lost connection. What gives it away is repetition: two clients
with one client id that both reconnect keep throwing each other out.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

SESSION_TAKEN_OVER = 142
"""MQTT v5 DISCONNECT reason: another connection presented the same client id."""
KEEPALIVE_TIMEOUT = 141
"""paho's reason when it gave up on a silent connection itself: a partition or a stalled
link (docs/faults.md), never a takeover, which closes the older socket at once."""
LOOP_WINDOW_S = 60.0
LOOP_THRESHOLD = 3

LogLine = tuple[int, str, tuple[object, ...]]


@dataclass
class DropWatch:
    """Count unexpected disconnects in a sliding window; pure, the caller passes the clock."""

    window_s: float = LOOP_WINDOW_S
    threshold: int = LOOP_THRESHOLD
    _times: deque[float] = field(default_factory=deque)

    def record(self, now: float) -> int:
        """Note one disconnect at ``now`` and return how many fell in the window."""
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        return len(self._times)


def describe_disconnect(client_id: str, reason: int, *, stopping: bool,
                        watch: DropWatch, now: float) -> LogLine:
    """Return the level, format and arguments to log a disconnect of ``client_id`` with."""
    if stopping or reason == 0:
        return logging.INFO, "%s disconnected (reason %d)", (client_id, reason)
    if reason == KEEPALIVE_TIMEOUT:
        # Not counted towards a loop: a dead link times out however often it likes.
        return logging.WARNING, "%s: no answer from the broker within the keepalive; " \
            "reconnecting (reason %d)", (client_id, reason)
    count = watch.record(now)
    if count >= watch.threshold:
        return logging.ERROR, (
            "%s: connection dropped %d times in %.0f s, a reconnect loop: most likely another "
            "client is connecting with this client id and each reconnect takes the session "
            "back, so events may be going to it instead of this worker. Look for a second "
            "worker with the same index or a service credential used elsewhere (broker log: "
            "'already connected, closing old connection')"
        ), (client_id, count, watch.window_s)
    if reason == SESSION_TAKEN_OVER:
        return logging.ERROR, (
            "%s: session taken over by another connection with the same client id; events "
            "queued for this worker may have gone to it (reconnecting)"
        ), (client_id,)
    return logging.WARNING, "%s lost its broker connection (reason %d)", (client_id, reason)
