"""The nxlink link state machine, one per end of the line (pure: no port, clock passed in).

Sending: frames get consecutive sequence numbers (mod 65536); at most
``window`` are unacknowledged at once; each is sent again after
``ack_timeout_s`` until ACKed. After ``max_tries`` sends a frame either fails
(commands: the caller is told) or, if it is *persistent* (events a
controller must never lose), waits ``link_down_retry_s`` and starts over.

Receiving: a new frame is *pending* until the caller has made it durable and
calls ``mark_handled``; only then is it ACKed. A frame already handled is a
duplicate: ACK it again, never act on it twice. The handled sequence numbers
form a bounded window (``dedupe_window``), which is safe because a sender
never has more than ``window`` frames outstanding. A HELLO with a new boot
counter means the peer restarted its numbering: the receive window resets.
A HELLO is also a barrier for its sender: nothing queued after it goes out
until it is ACKed, so the peer never sees new numbers before it knows about
the restart.

Events (protocol 2) also carry an *event id* that the controller keeps with
a saved event, so a resend after a controller reboot, under a new sequence
number, is known for what it is. The last ``event_window`` handled event
ids are remembered apart from the sequence window and survive a peer
restart (that is their point) and, through ``rx_state``, an agent restart.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from firmware_agent.wire.frames import SEQ_MODULUS, Ack, Frame, encode, next_seq

ACK_TIMEOUT_S = 0.5
"""Resend a frame not ACKed within this; covers the agent's batch fsync with room to spare."""
MAX_TRIES = 5
"""Sends of one frame before it fails (or, if persistent, waits for the link to return)."""
LINK_DOWN_RETRY_S = 2.0
"""Pause before a persistent frame starts a new round of tries."""
WINDOW = 32
"""Unacknowledged frames in flight per direction: many frames per round trip."""
DEDUPE_WINDOW = 1024
"""Handled sequence numbers remembered; must be >= the peer's window and < 32768."""
EVENT_WINDOW = 1024
"""Handled event ids remembered across peer restarts; must be >= the peer's window."""


@dataclass(frozen=True, slots=True)
class LinkTiming:
    """Timings and sizes of one link end; tests shrink them."""

    ack_timeout_s: float = ACK_TIMEOUT_S
    max_tries: int = MAX_TRIES
    link_down_retry_s: float = LINK_DOWN_RETRY_S
    window: int = WINDOW
    dedupe_window: int = DEDUPE_WINDOW
    event_window: int = EVENT_WINDOW

    def __post_init__(self) -> None:
        if self.ack_timeout_s <= 0 or self.link_down_retry_s <= 0:
            raise ValueError("link timings must be positive")
        if self.max_tries < 1 or not 1 <= self.window <= 256:
            raise ValueError("max_tries must be >= 1 and window within 1..256")
        if not self.window <= self.dedupe_window < SEQ_MODULUS // 2:
            raise ValueError("dedupe_window must be >= window and < 32768")
        if self.event_window < self.window:
            raise ValueError("event_window must be >= window")


class Reception(Enum):
    """What the receiver should do with an incoming data frame."""

    NEW = "new"
    """Act on it; ACK once it is durable (``mark_handled``)."""
    DUPLICATE = "duplicate"
    """Already handled: ACK it again now, do nothing else."""
    PENDING = "pending"
    """Received and not yet durable: ignore, the ACK follows."""
    REPEAT = "repeat"
    """A new frame carrying an event already handled (a resend after a peer reboot):
    ACK it like a new frame once the batch is durable, but do not act on it."""


HELLO = "HELLO"

EventKey = tuple[int, int]
"""An event id as (boot counter, first sequence number): ``E17.5`` is ``(17, 5)``."""


@dataclass(slots=True)
class _Outgoing:
    frame: Frame
    persistent: bool
    barrier: bool = False
    tries: int = 0
    due: float = 0.0


@dataclass(slots=True)
class LinkCounters:
    """Error counters for telemetry."""

    retransmits: int = 0
    duplicates: int = 0
    repeated_events: int = 0
    failed: int = 0
    stray_acks: int = 0
    peer_restarts: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters by name."""
        return {
            "retransmits": self.retransmits,
            "duplicates": self.duplicates,
            "repeated_events": self.repeated_events,
            "failed": self.failed,
            "stray_acks": self.stray_acks,
            "peer_restarts": self.peer_restarts,
        }


@dataclass(slots=True)
class Link:
    """One end of an nxlink line."""

    timing: LinkTiming = field(default_factory=LinkTiming)
    next_tx_seq: int = 0
    counters: LinkCounters = field(default_factory=LinkCounters)
    peer_boot: int | None = None
    _waiting: deque[_Outgoing] = field(default_factory=deque)
    _inflight: dict[int, _Outgoing] = field(default_factory=dict)
    _failed: list[int] = field(default_factory=list)
    _pending: dict[int, EventKey | None] = field(default_factory=dict)
    """Frames received and not yet durable: seq -> the event id they carry."""
    _handled: deque[int] = field(default_factory=deque)
    _handled_set: set[int] = field(default_factory=set)
    _events: deque[EventKey] = field(default_factory=deque)
    _events_set: set[EventKey] = field(default_factory=set)
    _orphans: list[EventKey] = field(default_factory=list)
    """Event ids of frames pending when their sender rebooted: their data is stored with
    the batch in hand, but their old numbers can never be ACKed."""

    # --- sending ------------------------------------------------------------------------

    def submit(self, kind: str, fields: tuple[str, ...] = (), *, persistent: bool) -> int:
        """Queue a frame for sending and return its sequence number."""
        seq = self.next_tx_seq
        self._waiting.append(_Outgoing(Frame(seq, kind, fields), persistent, kind == HELLO))
        self.next_tx_seq = next_seq(seq)
        return seq

    def due(self, now: float) -> list[bytes]:
        """Return the bytes to write now: retransmits that are due, then new frames."""
        out: list[bytes] = []
        for seq, item in list(self._inflight.items()):
            if item.due > now:
                continue
            if item.tries >= self.timing.max_tries:
                if not item.persistent:
                    del self._inflight[seq]
                    self._failed.append(seq)
                    self.counters.failed += 1
                    continue
                # A controller never drops an event: wait for the link, then try again.
                item.tries = 0
                item.due = now + self.timing.link_down_retry_s
                continue
            self.counters.retransmits += 1
            out.append(self._send(item, now))
        blocked = self._blocked()
        while self._waiting and len(self._inflight) < self.timing.window and not blocked:
            item = self._waiting.popleft()
            self._inflight[item.frame.seq] = item
            out.append(self._send(item, now))
            blocked = item.barrier
        return out

    def _blocked(self) -> bool:
        return any(item.barrier for item in self._inflight.values())

    def _send(self, item: _Outgoing, now: float) -> bytes:
        item.tries += 1
        item.due = now + self.timing.ack_timeout_s
        return encode(item.frame)

    def next_deadline(self) -> float | None:
        """Return when ``due`` next has work, or ``None`` if nothing is outstanding."""
        if self._waiting and len(self._inflight) < self.timing.window and not self._blocked():
            return 0.0
        return min((item.due for item in self._inflight.values()), default=None)

    def handle_ack(self, ack: Ack) -> bool:
        """Take an ACK; return whether it acknowledged an outstanding frame."""
        if self._inflight.pop(ack.seq, None) is None:
            self.counters.stray_acks += 1
            return False
        return True

    def take_failed(self) -> list[int]:
        """Return (and forget) the sequence numbers that ran out of tries."""
        failed, self._failed = self._failed, []
        return failed

    def cancel(self, seq: int) -> None:
        """Stop sending frame ``seq`` (its requester gave up waiting)."""
        self._inflight.pop(seq, None)
        self._waiting = deque(item for item in self._waiting if item.frame.seq != seq)

    def is_outstanding(self, seq: int) -> bool:
        """Return whether frame ``seq`` is still waiting for its ACK."""
        return seq in self._inflight or any(item.frame.seq == seq for item in self._waiting)

    def outstanding_frames(self) -> list[Frame]:
        """Return every frame not yet acknowledged, oldest first."""
        # Dicts keep insertion order, which is the order the frames were first sent.
        return [item.frame for item in self._inflight.values()] + [
            item.frame for item in self._waiting
        ]

    @property
    def unacked(self) -> int:
        """Frames sent or queued and not yet acknowledged."""
        return len(self._inflight) + len(self._waiting)

    def requeue_all(self) -> None:
        """Send every outstanding frame again as soon as possible (after a peer restart)."""
        for item in self._inflight.values():
            item.tries = 0
            item.due = 0.0

    # --- receiving ----------------------------------------------------------------------

    def receive(self, frame: Frame, event_id: EventKey | None = None) -> Reception:
        """Classify an incoming data frame carrying ``event_id`` (see ``Reception``)."""
        if frame.seq in self._pending:
            return Reception.PENDING
        if frame.seq in self._handled_set:
            self.counters.duplicates += 1
            return Reception.DUPLICATE
        repeat = event_id is not None and (event_id in self._events_set or event_id in
                                           self._orphans or event_id in self._pending.values())
        self._pending[frame.seq] = event_id
        if repeat:
            self.counters.repeated_events += 1
            return Reception.REPEAT
        return Reception.NEW

    def mark_handled(self, seqs: list[int]) -> list[bytes]:
        """Record ``seqs`` as durable and return their ACK frames."""
        acks = []
        self._remember_events(self._orphans)
        self._orphans = []
        for seq in seqs:
            event_id = self._pending.pop(seq, None)
            if seq not in self._handled_set:
                self._handled.append(seq)
                self._handled_set.add(seq)
            self._remember_events([event_id])
            acks.append(encode(Ack(seq)))
        while len(self._handled) > self.timing.dedupe_window:
            self._handled_set.discard(self._handled.popleft())
        return acks

    def _remember_events(self, event_ids: Sequence[EventKey | None]) -> None:
        for event_id in event_ids:
            if event_id is not None and event_id not in self._events_set:
                self._events.append(event_id)
                self._events_set.add(event_id)
        while len(self._events) > self.timing.event_window:
            self._events_set.discard(self._events.popleft())

    def abandon(self, seqs: list[int]) -> None:
        """Forget pending ``seqs`` that could not be made durable; their retransmits are new."""
        for seq in seqs:
            self._pending.pop(seq, None)
        self._orphans = []

    def peer_booted(self, boot_counter: int) -> bool:
        """Note the peer's boot counter from a HELLO; return True if it is new to us.

        Only a change from a known counter clears the receive window: with no
        counter known yet, the frames handled so far are this boot's own. The
        event ids stay: a rebooted peer resends saved events under new numbers.
        """
        if boot_counter == self.peer_boot:
            return False
        if self.peer_boot is not None:
            self.counters.peer_restarts += 1
            self._orphans.extend(e for e in self._pending.values() if e is not None)
            self._pending.clear()
            self._handled.clear()
            self._handled_set.clear()
        self.peer_boot = boot_counter
        return True

    # --- durable receive state ------------------------------------------------------------

    def rx_state(self, about_to_handle: Sequence[int] = ()) -> str:
        """Return the receive window as text, as it will be once ``about_to_handle`` is handled.

        Stored in the same transaction as the data of those frames, so that after
        a crash their retransmissions are recognised as duplicates.
        """
        handled = [*self._handled, *(s for s in about_to_handle if s not in self._handled_set)]
        handled = handled[-self.timing.dedupe_window :]
        new_events = [*self._orphans, *(self._pending.get(s) for s in about_to_handle)]
        events = [*self._events,
                  *(e for e in dict.fromkeys(new_events) if e and e not in self._events_set)]
        events = events[-self.timing.event_window :]
        return json.dumps({"peer_boot": self.peer_boot, "handled": handled,
                           "events": _runs(events)})

    def restore_rx_state(self, text: str) -> None:
        """Resume the receive window saved by ``rx_state``; raise ``ValueError`` if corrupt."""
        data = json.loads(text)
        peer_boot, handled = data["peer_boot"], data["handled"]
        # State written before event ids existed has none: nothing to remember.
        events = _unruns(data.get("events", []))
        if peer_boot is not None and not isinstance(peer_boot, int):
            raise ValueError("peer_boot is not an integer")
        if not isinstance(handled, list) or not all(
            isinstance(seq, int) and 0 <= seq < SEQ_MODULUS for seq in handled
        ):
            raise ValueError("handled is not a list of sequence numbers")
        self.peer_boot = peer_boot
        self._pending.clear()
        self._orphans = []
        self._handled = deque(handled[-self.timing.dedupe_window :])
        self._handled_set = set(self._handled)
        self._events = deque(events[-self.timing.event_window :])
        self._events_set = set(self._events)


def _runs(events: Sequence[EventKey]) -> list[list[int]]:
    """Write event ids as ``[boot, first seq, count]`` runs: events mostly come in order."""
    runs: list[list[int]] = []
    for boot, seq in events:
        if runs and runs[-1][0] == boot and (runs[-1][1] + runs[-1][2]) % SEQ_MODULUS == seq:
            runs[-1][2] += 1
        else:
            runs.append([boot, seq, 1])
    return runs


def _unruns(runs: object) -> list[EventKey]:
    """Read what ``_runs`` wrote; raise ``ValueError`` if it is not that."""
    if not isinstance(runs, list) or not all(
        isinstance(run, list) and len(run) == 3 and all(isinstance(n, int) for n in run)
        and 0 <= run[1] < SEQ_MODULUS and 0 < run[2] <= SEQ_MODULUS for run in runs
    ):
        raise ValueError("events is not a list of [boot, seq, count] runs")
    return [(boot, (first + i) % SEQ_MODULUS) for boot, first, count in runs
            for i in range(count)]
