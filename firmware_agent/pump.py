"""Drain the outbox into MQTT with a bounded number of messages in flight.

Rows are handed to paho in id order, at most ``max_inflight`` without a
PUBACK (paho silently loses QoS 1 messages past about 65,535 pending, so it
never gets an unbounded queue). A row is deleted only when its PUBACK
arrives. paho itself resends unacknowledged messages after a reconnect, so a
row handed over stays handed over; after a restart the cursor starts from
zero and everything still in the outbox goes out again (duplicates are
fine: consumers deduplicate by event id).
"""

from __future__ import annotations

import logging
import queue
import threading

from firmware_agent.store import Store
from firmware_agent.uplink import Uplink

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.5
"""Longest the pump sleeps without news; new rows and ACKs wake it at once."""


class OutboxPump:
    """A thread that publishes outbox rows and deletes them on PUBACK."""

    def __init__(self, store: Store, uplink: Uplink, *, max_inflight: int) -> None:
        self.store = store
        self.uplink = uplink
        self.max_inflight = max_inflight
        self.published = 0
        self.acked = 0
        self.refused = 0
        self._cursor = 0
        self._inflight: dict[int, int] = {}  # mid -> row id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nx-outbox-pump", daemon=True)

    @property
    def inflight(self) -> int:
        """Messages handed to paho and not yet acknowledged."""
        return len(self._inflight)

    def start(self) -> None:
        """Start the pump thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the pump thread; unacknowledged rows stay in the outbox."""
        self._stop.set()
        self.uplink.wakeup.set()
        if self._thread.is_alive():
            self._thread.join()

    def notify(self) -> None:
        """Tell the pump that new rows are in the outbox."""
        self.uplink.wakeup.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.uplink.wakeup.clear()
            try:
                self._take_acks()
                self._fill()
            except Exception:
                # Keep going: the rows are still on disk and will be retried.
                log.exception("outbox pump failed; retrying")
                self._stop.wait(IDLE_WAIT_S)
            self.uplink.wakeup.wait(IDLE_WAIT_S)

    def _take_acks(self) -> None:
        done: list[int] = []
        while True:
            try:
                ack = self.uplink.acks.get_nowait()
            except queue.Empty:
                break
            row_id = self._inflight.pop(ack.mid, None)
            if row_id is None:
                continue  # the status message, or a PUBACK from before a restart
            if not ack.ok:
                # The broker refused it (ACL, quota); resending cannot help.
                self.refused += 1
                log.warning("broker refused outbox row %d: %s; dropping it", row_id, ack.reason)
            done.append(row_id)
        if done:
            self.store.delete(done)
            self.acked += len(done)

    def _fill(self) -> None:
        free = self.max_inflight - len(self._inflight)
        if free <= 0:
            return
        for row in self.store.pending_after(self._cursor, free):
            msg = row.message
            mid = self.uplink.publish(msg.topic, msg.payload, msg.qos, msg.retain)
            if mid is None:
                return  # paho refused; try again on the next wake-up
            self._inflight[mid] = row.id
            self._cursor = row.id
            self.published += 1
