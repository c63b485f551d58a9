"""The agent's end of a serial line under a tester's control, for the conformance kit.

Unlike the driver, a probe sends exactly the bytes it is told to (damaged
frames, reused numbers, a second HELLO) and can hold back its ACKs, and it
records every packet the controller sent with the time it arrived.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from firmware_agent.wire.frames import Ack, Frame, FrameReader, Packet, encode, next_seq

READ_CHUNK = 4096


class Port(Protocol):
    """What a probe needs of a pyserial port."""

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    @property
    def in_waiting(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Arrival:
    """A packet from the controller and when it was read (monotonic seconds)."""

    at: float
    packet: Packet


@dataclass(slots=True)
class Probe:
    """Write frames as the agent would (or would not) and record the controller's answers."""

    port: Port
    clock: Callable[[], float] = time.monotonic
    next_tx: int = 0
    acking: bool = True
    """ACK every controller data frame as it arrives (what an agent does)."""
    withheld: set[int] = field(default_factory=set)
    """Controller frame numbers seen while ``acking`` was off, not yet ACKed."""
    arrivals: list[Arrival] = field(default_factory=list)
    reader: FrameReader = field(default_factory=FrameReader)

    def send(self, kind: str, *fields: str, seq: int | None = None) -> int:
        """Send a data frame (the next number unless ``seq`` is given); return its number."""
        if seq is None:
            seq, self.next_tx = self.next_tx, next_seq(self.next_tx)
        self.port.write(encode(Frame(seq, kind, fields)))
        return seq

    def send_raw(self, data: bytes) -> None:
        """Write ``data`` as it is (noise, a damaged frame)."""
        self.port.write(data)

    def ack_withheld(self) -> None:
        """Turn ACKs back on and ACK everything held back."""
        self.acking = True
        for seq in sorted(self.withheld):
            self.port.write(encode(Ack(seq)))
        self.withheld.clear()

    def pump(self, seconds: float) -> None:
        """Read (and ACK) for ``seconds``."""
        self.wait_for(lambda: False, seconds)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Read until ``predicate`` holds or ``timeout`` passes; return whether it held."""
        deadline = self.clock() + timeout
        while not predicate():
            if self.clock() >= deadline:
                return False
            data = self.port.read(self.port.in_waiting or 1)
            if data:
                self._take(data)
        return True

    def _take(self, data: bytes) -> None:
        now = self.clock()
        for packet in self.reader.feed(data):
            self.arrivals.append(Arrival(now, packet))
            if isinstance(packet, Frame):
                if self.acking:
                    self.port.write(encode(Ack(packet.seq)))
                else:
                    self.withheld.add(packet.seq)

    # --- what arrived -----------------------------------------------------------------------

    def mark(self) -> int:
        """Return a position in the arrivals, to look only at what comes after it."""
        return len(self.arrivals)

    def acks(self, seq: int, since: int = 0) -> int:
        """Return how many ACKs of our frame ``seq`` arrived after position ``since``."""
        return sum(isinstance(a.packet, Ack) and a.packet.seq == seq
                   for a in self.arrivals[since:])

    def frames(self, kind: str | None = None, since: int = 0) -> list[Arrival]:
        """Return the controller's data frames (of ``kind``) that arrived after ``since``."""
        return [a for a in self.arrivals[since:] if isinstance(a.packet, Frame)
                and (kind is None or a.packet.type == kind)]
