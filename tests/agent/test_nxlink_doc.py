"""Every example in docs/nxlink.md agrees with the codec, so the spec cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from firmware_agent.nxlink.messages import MESSAGE_TYPES, MessageError, decode_message
from firmware_agent.wire.crc import crc16_ccitt_false
from firmware_agent.wire.frames import Frame, FrameError, decode

DOC = Path(__file__).resolve().parents[2] / "docs" / "nxlink.md"
_BLOCK_RE = re.compile(r"^```(nxlink(?:-bad|-crc)?)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    """Return the lines of every fenced block of ``kind`` in the doc."""
    text = DOC.read_text(encoding="utf-8")
    return [line for k, body in _BLOCK_RE.findall(text) if k == kind
            for line in body.splitlines() if line.strip()]


def test_doc_has_examples() -> None:
    assert len(blocks("nxlink")) >= 30
    assert len(blocks("nxlink-bad")) >= 5
    assert len(blocks("nxlink-crc")) >= 3


@pytest.mark.parametrize("line", blocks("nxlink"))
def test_every_example_frame_is_valid(line: str) -> None:
    direction, _, raw = line.partition(" ")
    assert direction in ("C>", "A>")
    packet = decode(raw.encode("ascii") + b"\r\n")
    if isinstance(packet, Frame):
        decode_message(packet)


@pytest.mark.parametrize("line", blocks("nxlink-bad"))
def test_every_bad_example_is_refused(line: str) -> None:
    def read(raw: bytes) -> object:
        packet = decode(raw)
        return decode_message(packet) if isinstance(packet, Frame) else packet

    with pytest.raises((FrameError, MessageError)):
        read(line.encode("ascii") + b"\r\n")


@pytest.mark.parametrize("line", blocks("nxlink-crc"))
def test_checksum_examples(line: str) -> None:
    body, _, crc = line.rpartition(" = ")
    assert f"{crc16_ccitt_false(body.encode('ascii')):04X}" == crc


def test_every_message_type_is_documented_with_an_example() -> None:
    shown = {decode(line.split(" ", 1)[1].encode() + b"\r\n") for line in blocks("nxlink")}
    types = {p.type for p in shown if isinstance(p, Frame)}
    assert types == MESSAGE_TYPES
