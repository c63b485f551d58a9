"""The nxlink frame codec: bytes on the serial line <-> ``Frame`` values.

A frame is ``$<body>*<CRC16>\\r\\n`` where the CRC is four upper-case hex
digits of CRC-16/CCITT-FALSE over ``<body>``. A data frame's body is
``<seq>,<TYPE>[,<field>...]``; an acknowledgement's body is ``ACK,<seq>``.
The codec knows nothing about what the fields mean (see ``messages``); it only
guarantees that what it returns is exactly what a sender framed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from firmware_agent.wire.crc import crc16_ccitt_false
from firmware_agent.wire.digits import is_ascii_digits

SEQ_MODULUS = 65536
"""Sequence numbers are 0..65535 and wrap to 0."""

MAX_FRAME_BYTES = 256
"""Longest frame, ``$`` to ``\\n`` inclusive; a longer run is noise."""

ACK = "ACK"

_TYPE_RE = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")
# Printable ASCII without the four characters that carry framing.
_CHECKSUM_RE = re.compile(rb"[0-9A-F]{4}")
_FIELD_RE = re.compile(r"^[\x20-\x7e]*$")
_FORBIDDEN = frozenset("$*,")


class FrameError(ValueError):
    """A value cannot be framed, or bytes are not a valid frame."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One data frame: sequence number, message type and raw text fields."""

    seq: int
    type: str
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.seq < SEQ_MODULUS:
            raise FrameError(f"seq {self.seq} outside 0..{SEQ_MODULUS - 1}")
        if self.type == ACK or not _TYPE_RE.match(self.type):
            raise FrameError(f"bad frame type {self.type!r}")
        for field in self.fields:
            if not _FIELD_RE.match(field) or _FORBIDDEN.intersection(field):
                raise FrameError(f"field {field!r} holds a framing or non-printable character")


@dataclass(frozen=True, slots=True)
class Ack:
    """Acknowledgement of the data frame with sequence number ``seq``."""

    seq: int

    def __post_init__(self) -> None:
        if not 0 <= self.seq < SEQ_MODULUS:
            raise FrameError(f"seq {self.seq} outside 0..{SEQ_MODULUS - 1}")


Packet = Frame | Ack


def next_seq(seq: int) -> int:
    """Return the sequence number after ``seq``, wrapping at 65536."""
    return (seq + 1) % SEQ_MODULUS


def _wrap(body: str) -> bytes:
    raw = body.encode("ascii")
    return b"$" + raw + b"*" + f"{crc16_ccitt_false(raw):04X}".encode("ascii") + b"\r\n"


def encode(packet: Packet) -> bytes:
    """Frame ``packet`` for the wire."""
    if isinstance(packet, Ack):
        data = _wrap(f"{ACK},{packet.seq}")
    else:
        data = _wrap(",".join((str(packet.seq), packet.type, *packet.fields)))
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    return data


def _parse_seq(text: str) -> int:
    # Canonical decimal only: "007" or "+7" would make two encodings of one frame.
    if not is_ascii_digits(text) or (len(text) > 1 and text[0] == "0"):
        raise FrameError(f"bad sequence number {text!r}")
    return int(text)


def decode_body(body: bytes) -> Packet:
    """Turn the checksummed text between ``$`` and ``*`` into a packet."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise FrameError("non-ASCII byte in frame") from exc
    if not _FIELD_RE.match(text):
        raise FrameError("non-printable byte in frame")
    parts = text.split(",")
    if parts[0] == ACK:
        if len(parts) != 2:
            raise FrameError("ACK takes exactly one field")
        return Ack(_parse_seq(parts[1]))
    if len(parts) < 2:
        raise FrameError("frame has no type")
    return Frame(_parse_seq(parts[0]), parts[1], tuple(parts[2:]))


def decode(data: bytes) -> Packet:
    """Decode exactly one complete frame; raise ``FrameError`` otherwise."""
    if not data.startswith(b"$") or not data.endswith(b"\r\n"):
        raise FrameError("frame must start with $ and end with CRLF")
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError("frame too long")
    star = data.rfind(b"*")
    if star < 0 or len(data) - star != 7:
        raise FrameError("frame has no *XXXX checksum")
    body, checksum = data[1:star], data[star + 1 : -2]
    if b"$" in body:
        raise FrameError("$ inside a frame")
    # Exactly four upper-case hex digits: int(..., 16) alone would also take a
    # space or an underscore where a bit flip put one (" DFE" reads as 0x0DFE).
    if not _CHECKSUM_RE.fullmatch(checksum):
        raise FrameError("checksum is not four upper-case hex digits")
    if crc16_ccitt_false(body) != int(checksum, 16):
        raise FrameError("checksum mismatch")
    return decode_body(body)


class FrameReader:
    """Turn a byte stream with noise into the valid packets in it.

    Feed it whatever the port returned; it buffers partial frames, drops
    anything that does not check out and resynchronises on the next ``$``.
    Counters say how much was thrown away, for the agent's link telemetry.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.bad_frames = 0
        self.noise_bytes = 0

    def feed(self, data: bytes) -> Iterator[Packet]:
        """Add ``data`` and yield every complete valid packet now available."""
        self._buffer.extend(data)
        while True:
            start = self._buffer.find(b"$")
            if start < 0:
                self.noise_bytes += len(self._buffer)
                self._buffer.clear()
                return
            if start:
                self.noise_bytes += start
                del self._buffer[:start]
            # A second "$" before the line end means the first frame was cut short.
            end = self._buffer.find(b"\n", 1)
            restart = self._buffer.find(b"$", 1)
            if restart >= 0 and (end < 0 or restart < end):
                self.bad_frames += 1
                self.noise_bytes += restart
                del self._buffer[:restart]
                continue
            if end < 0:
                if len(self._buffer) > MAX_FRAME_BYTES:
                    self.bad_frames += 1
                    self.noise_bytes += len(self._buffer)
                    self._buffer.clear()
                return
            candidate = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            try:
                packet = decode(candidate)
            except FrameError:
                self.bad_frames += 1
                continue
            yield packet
