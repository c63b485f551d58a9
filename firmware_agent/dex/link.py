"""The agent's side of a DEX/UCS audit read (the data carrier, "DC", role).

One read is three exchanges (docs/dex.md has the byte-level picture):
first handshake (we ask to read), second handshake (the machine identifies
itself), then the audit as data blocks, each acknowledged with alternating
DLE '0' / DLE '1' or refused with NAK so the machine sends it again.
Anything unexpected ends the session with DexLinkError; the caller retries later.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from firmware_agent.dex import ucs


class BytePort(Protocol):
    """What we need of a pyserial ``Serial``: reads that return after a short timeout."""

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def reset_input_buffer(self) -> None: ...

    @property
    def in_waiting(self) -> int: ...


class DexLinkError(RuntimeError):
    """The UCS exchange failed (timeout, refusal, too many bad blocks)."""


@dataclass(frozen=True, slots=True)
class LinkTimings:
    """How long and how often to try; tests shrink these."""

    response_s: float = 2.0
    """Wait this long for each answer from the machine."""
    session_s: float = 60.0
    """Give up on a whole read after this long (a 30 KB audit at 9600 baud takes ~35 s)."""
    enq_tries: int = 3
    nak_limit: int = 5
    """Refuse at most this many bad blocks in one session before giving up."""


@dataclass(slots=True)
class LinkStats:
    """Error counters for telemetry."""

    sessions: int = 0
    failures: int = 0
    naks_sent: int = 0
    noise_bytes: int = 0


class _Wire:
    """Tokens from the port, with deadlines."""

    def __init__(self, port: BytePort, stats: LinkStats, session_deadline: float) -> None:
        self._port = port
        self._reader = ucs.TokenReader()
        self._pending: deque[ucs.Token] = deque()
        self._stats = stats
        self._session_deadline = session_deadline

    def send(self, data: bytes) -> None:
        self._port.write(data)

    def next(self, timeout_s: float, what: str) -> ucs.Token:
        deadline = min(time.monotonic() + timeout_s, self._session_deadline)
        while True:
            while self._pending:
                token = self._pending.popleft()
                if isinstance(token, ucs.Noise):
                    self._stats.noise_bytes += len(token.data)
                    continue
                return token
            if time.monotonic() >= deadline:
                raise DexLinkError(f"timed out waiting for {what}")
            # One byte blocks until something arrives (or the port timeout); the rest
            # of what is already buffered comes without waiting.
            chunk = self._port.read(1)
            if chunk:
                chunk += self._port.read(self._port.in_waiting)
                self._pending.extend(self._reader.feed(chunk))


def _is(token: ucs.Token, byte: int) -> bool:
    return isinstance(token, ucs.Control) and token.byte == byte


class UcsMaster:
    """Reads audits from a machine over a UCS link."""

    def __init__(
        self, port: BytePort, comm_id: str = "NALOXNET01", timings: LinkTimings | None = None
    ) -> None:
        self._port = port
        self._comm_id = comm_id
        self._t = timings or LinkTimings()
        self.stats = LinkStats()
        self.machine: ucs.Identification | None = None

    def read_audit(self) -> bytes:
        """Run one full read and return the audit bytes; raise DexLinkError on failure."""
        self.stats.sessions += 1
        self._port.reset_input_buffer()
        wire = _Wire(self._port, self.stats, time.monotonic() + self._t.session_s)
        try:
            self._first_handshake(wire)
            self._second_handshake(wire)
            return self._receive_data(wire)
        except DexLinkError:
            self.stats.failures += 1
            raise

    def _first_handshake(self, wire: _Wire) -> None:
        for _ in range(self._t.enq_tries):
            wire.send(bytes([ucs.ENQ]))
            try:
                token = wire.next(self._t.response_s, "DLE 0 after ENQ")
            except DexLinkError:
                continue
            if token == ucs.Ack(0):
                break
        else:
            raise DexLinkError(f"machine did not answer ENQ ({self._t.enq_tries} tries)")
        request = ucs.encode_block(ucs.operation_request(self._comm_id, "R"), header=True)
        for _ in range(self._t.nak_limit):
            wire.send(request)
            token = wire.next(self._t.response_s, "DLE 1 after operation request")
            if token == ucs.Ack(1):
                wire.send(bytes([ucs.EOT]))
                return
            if not _is(token, ucs.NAK):
                raise DexLinkError(f"unexpected answer to operation request: {token!r}")
        raise DexLinkError("machine refused the operation request")

    def _second_handshake(self, wire: _Wire) -> None:
        token = wire.next(self._t.response_s, "ENQ of the second handshake")
        if not _is(token, ucs.ENQ):
            raise DexLinkError(f"expected ENQ for the second handshake, got {token!r}")
        wire.send(ucs.ACK0)
        naks = 0
        while True:
            token = wire.next(self._t.response_s, "identification block")
            if isinstance(token, ucs.Block) and token.header and token.crc_ok:
                break
            if isinstance(token, ucs.Block) and naks < self._t.nak_limit:
                naks += 1
                self.stats.naks_sent += 1
                wire.send(bytes([ucs.NAK]))
                continue
            raise DexLinkError(f"expected the identification block, got {token!r}")
        try:
            self.machine = ucs.parse_identification(token.payload)
        except ucs.UcsFrameError as exc:
            raise DexLinkError(str(exc)) from exc
        if self.machine.response_code != "00":
            raise DexLinkError(f"machine refused the read: code {self.machine.response_code}")
        wire.send(ucs.ACK1)
        token = wire.next(self._t.response_s, "EOT after identification")
        if not _is(token, ucs.EOT):
            raise DexLinkError(f"expected EOT after identification, got {token!r}")

    def _receive_data(self, wire: _Wire) -> bytes:
        token = wire.next(self._t.response_s, "ENQ before data")
        if not _is(token, ucs.ENQ):
            raise DexLinkError(f"expected ENQ before data, got {token!r}")
        last_ack = ucs.ACK0
        wire.send(last_ack)
        number, naks = 1, 0
        parts: list[bytes] = []
        while True:
            token = wire.next(self._t.response_s, f"data block {number}")
            if _is(token, ucs.ENQ):
                # The machine missed our answer and asks for it again.
                wire.send(last_ack)
                continue
            if _is(token, ucs.EOT) and parts:
                raise DexLinkError("machine ended the transfer before the last block")
            if not isinstance(token, ucs.Block) or token.header:
                raise DexLinkError(f"expected data block {number}, got {token!r}")
            if not token.crc_ok:
                naks += 1
                self.stats.naks_sent += 1
                if naks > self._t.nak_limit:
                    raise DexLinkError(f"data block {number} failed its CRC {naks} times")
                wire.send(bytes([ucs.NAK]))
                continue
            parts.append(token.payload)
            last_ack = ucs.ack(number)
            wire.send(last_ack)
            number += 1
            if token.last:
                break
        for _ in range(self._t.nak_limit):
            token = wire.next(self._t.response_s, "EOT after the last block")
            if _is(token, ucs.EOT):
                return b"".join(parts)
            if not _is(token, ucs.ENQ):
                raise DexLinkError(f"expected EOT after the last block, got {token!r}")
            wire.send(last_ack)  # the answer to the last block went missing
        raise DexLinkError("machine kept asking for the answer to its last block")
