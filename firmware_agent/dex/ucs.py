"""DEX/UCS link-layer tokens: encoding and an incremental decoder (pure, no port).

On the wire a UCS exchange is made of single control bytes (ENQ, EOT, NAK),
two-byte acknowledgements (DLE '0' / DLE '1', alternating) and blocks:
``DLE SOH|STX payload DLE ETB|ETX crc_lo crc_hi``. The CRC-16 covers the payload
and the closing ETB/ETX, not the DLEs nor SOH/STX. Both ends of the link (the
agent in firmware_agent.dex.link, the virtual machine in simulators.virtual_dex)
use this module, so the framing is tested once without a port.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_agent.dex.crc import dex_crc16

SOH = 0x01
STX = 0x02
ETX = 0x03
EOT = 0x04
ENQ = 0x05
DLE = 0x10
NAK = 0x15
ETB = 0x17
ACK0 = bytes([DLE, 0x30])
ACK1 = bytes([DLE, 0x31])

MAX_BLOCK_PAYLOAD = 245
"""Largest payload we put in one data block (the size UCS readers commonly accept)."""

COMM_ID_LEN = 10
REVISION_LEVEL = "R00L06"
"""UCS revision 00, level 06, announced in both handshakes."""


class UcsFrameError(ValueError):
    """Bytes that are not a valid UCS block."""


@dataclass(frozen=True, slots=True)
class Control:
    """A single control token: ENQ, EOT or NAK."""

    byte: int


@dataclass(frozen=True, slots=True)
class Ack:
    """DLE '0' or DLE '1'; ``number`` is 0 or 1."""

    number: int


@dataclass(frozen=True, slots=True)
class Block:
    """A framed block; ``header`` for SOH blocks (handshakes), else STX (data)."""

    payload: bytes
    header: bool
    last: bool
    crc_ok: bool


@dataclass(frozen=True, slots=True)
class Noise:
    """Bytes that fit no token (line noise, a peer talking out of turn)."""

    data: bytes


Token = Control | Ack | Block | Noise


def ack(number: int) -> bytes:
    """Return the DLE '0' / DLE '1' acknowledgement for ``number`` (mod 2)."""
    return ACK1 if number % 2 else ACK0


def encode_block(payload: bytes, *, header: bool = False, last: bool = True) -> bytes:
    """Frame ``payload`` as a UCS block with its CRC (low byte first)."""
    if DLE in payload:
        # EVA-DTS is printable text; we do not implement DLE stuffing (docs/dex.md).
        raise UcsFrameError("payload contains DLE")
    end = ETX if last else ETB
    crc = dex_crc16(payload + bytes([end]))
    start = SOH if header else STX
    return bytes([DLE, start]) + payload + bytes([DLE, end, crc & 0xFF, crc >> 8])


def chunk(data: bytes, size: int = MAX_BLOCK_PAYLOAD) -> list[bytes]:
    """Split ``data`` into block payloads of at most ``size`` bytes (at least one)."""
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def operation_request(comm_id: str, operation: str = "R") -> bytes:
    """Return the first-handshake payload: communication id, operation, revision/level."""
    return _comm_id(comm_id) + operation.encode("ascii") + REVISION_LEVEL.encode("ascii")


def identification(comm_id: str, response_code: str = "00") -> bytes:
    """Return the second-handshake payload: response code, communication id, revision."""
    return response_code.encode("ascii") + _comm_id(comm_id) + REVISION_LEVEL.encode("ascii")


@dataclass(frozen=True, slots=True)
class Identification:
    response_code: str
    comm_id: str
    revision: str


def parse_identification(payload: bytes) -> Identification:
    """Read a second-handshake payload; raise UcsFrameError when it is too short."""
    text = payload.decode("ascii", errors="replace")
    if len(text) < 2 + COMM_ID_LEN:
        raise UcsFrameError(f"identification block too short ({len(text)} bytes)")
    return Identification(text[:2], text[2 : 2 + COMM_ID_LEN].strip(), text[2 + COMM_ID_LEN :])


def parse_operation_request(payload: bytes) -> tuple[str, str]:
    """Read a first-handshake payload into (communication id, operation)."""
    text = payload.decode("ascii", errors="replace")
    if len(text) < COMM_ID_LEN + 1:
        raise UcsFrameError(f"operation request too short ({len(text)} bytes)")
    return text[:COMM_ID_LEN].strip(), text[COMM_ID_LEN]


def _comm_id(comm_id: str) -> bytes:
    raw = comm_id.encode("ascii")[:COMM_ID_LEN]
    return raw.ljust(COMM_ID_LEN, b"0")


class TokenReader:
    """Incremental decoder: feed bytes, take complete tokens out in order."""

    def __init__(self, max_payload: int = 4 * MAX_BLOCK_PAYLOAD) -> None:
        self._buf = bytearray()
        self._max_payload = max_payload

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a token."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Token]:
        """Add ``data`` and return every token it completes."""
        self._buf.extend(data)
        tokens: list[Token] = []
        while self._buf:
            token, used = self._next()
            if used == 0:
                break
            del self._buf[:used]
            if token is not None:
                tokens.append(token)
        return tokens

    def _next(self) -> tuple[Token | None, int]:
        buf = self._buf
        first = buf[0]
        if first in (ENQ, EOT, NAK):
            return Control(first), 1
        if first != DLE:
            end = 1
            while end < len(buf) and buf[end] not in (ENQ, EOT, NAK, DLE):
                end += 1
            return Noise(bytes(buf[:end])), end
        if len(buf) < 2:
            return None, 0
        second = buf[1]
        if second in (0x30, 0x31):
            return Ack(second - 0x30), 2
        if second in (SOH, STX):
            return self._block(header=second == SOH)
        return Noise(bytes(buf[:2])), 2

    def _block(self, *, header: bool) -> tuple[Token | None, int]:
        buf = self._buf
        index = 2
        while True:
            pos = buf.find(DLE, index)
            if pos < 0:
                if len(buf) - 2 > self._max_payload:
                    return Noise(bytes(buf)), len(buf)
                return None, 0
            if pos + 1 >= len(buf):
                return None, 0
            end = buf[pos + 1]
            if end in (ETX, ETB):
                if pos + 4 > len(buf):
                    return None, 0
                payload = bytes(buf[2:pos])
                received = buf[pos + 2] | (buf[pos + 3] << 8)
                crc_ok = dex_crc16(payload + bytes([end])) == received
                return Block(payload, header, end == ETX, crc_ok), pos + 4
            # A DLE inside a block that does not close it: the block is garbled.
            return Noise(bytes(buf[:pos])), pos
