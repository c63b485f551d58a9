"""CRC-16 used by DEX/UCS blocks and by the EVA-DTS G85 segment."""

from __future__ import annotations

# Polynomial x^16 + x^15 + x^2 + 1 processed LSB first (0xA001 reflected), initial
# value 0, no final XOR: the catalogue's CRC-16/ARC. Check value for b"123456789"
# is 0xBB3D. The same sum protects UCS link blocks and the audit's G85 segment
# (verified against the G85 values of the real files in tests/data/dex).
_POLY_REFLECTED = 0xA001


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def dex_crc16(data: bytes, crc: int = 0) -> int:
    """Return the CRC-16/ARC of ``data``, continuing from ``crc``."""
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc
