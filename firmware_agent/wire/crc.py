"""CRC-16/CCITT-FALSE, the checksum of every nxlink frame."""

from __future__ import annotations

# Polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR.
# Check value for b"123456789" is 0x29B1 (the catalogue's test vector).
_POLY = 0x1021
_INIT = 0xFFFF


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _make_table()


def crc16_ccitt_false(data: bytes) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data``."""
    crc = _INIT
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc
