"""Every example in docs/nxlink.md agrees with the codec, so the spec cannot drift."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from firmware_agent.drivers.base import Vend
from firmware_agent.ledger import Ledger
from firmware_agent.nxlink.messages import (
    EVENT_TYPES,
    MESSAGE_TYPES,
    MessageError,
    decode_message,
    split_event_id,
)
from firmware_agent.processor import Processor
from firmware_agent.wire.crc import crc16_ccitt_false
from firmware_agent.wire.frames import Frame, FrameError, decode

DOC = Path(__file__).resolve().parents[2] / "docs" / "nxlink.md"
_BLOCK_RE = re.compile(r"^```(nxlink(?:-bad|-crc|-invalid|-mqtt)?)\n(.*?)^```",
                       re.MULTILINE | re.DOTALL)


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
        decode_message(split_event_id(packet)[0])


def test_every_protocol_2_event_example_carries_its_event_id() -> None:
    for line in blocks("nxlink"):
        packet = decode(line.split(" ", 1)[1].encode() + b"\r\n")
        if isinstance(packet, Frame) and packet.type in EVENT_TYPES:
            event_id = split_event_id(packet)[1]
            assert event_id is None or event_id.boot in (17, 18), line


@pytest.mark.parametrize("line", blocks("nxlink-bad"))
def test_every_damaged_example_fails_the_frame_checks(line: str) -> None:
    # Damaged frames are never ACKed, so they must fail before any message is read.
    with pytest.raises(FrameError):
        decode(line.encode("ascii") + b"\r\n")


@pytest.mark.parametrize("line", blocks("nxlink-invalid"))
def test_every_invalid_example_is_a_frame_but_not_a_message(line: str) -> None:
    # Well-formed (so ACKed, docs/nxlink.md 2.3) and refused by the message layer.
    packet = decode(line.encode("ascii") + b"\r\n")
    assert isinstance(packet, Frame)
    with pytest.raises(MessageError):
        decode_message(split_event_id(packet)[0])


def test_the_mqtt_example_is_what_the_agent_publishes() -> None:
    [block] = [body for kind, body in _BLOCK_RE.findall(DOC.read_text(encoding="utf-8"))
               if kind == "nxlink-mqtt"]
    topic, _, payload = block.partition("\n")
    doc = json.loads(payload)
    ledger = Ledger()
    ledger.configure(3, "naloxone-nasal-4mg", 10)
    processor = Processor("m-0042", doc["boot_id"], next_seq=doc["seq"], ledger=ledger)
    raw = re.search(r"reads `(\$[^`]+)`", DOC.read_text(encoding="utf-8"))
    assert raw is not None
    packet = decode(raw.group(1).encode() + b"\r\n")
    assert isinstance(packet, Frame)
    vend = decode_message(split_event_id(packet)[0])
    assert isinstance(vend, Vend)
    [message] = processor.process([vend], datetime.fromisoformat(doc["device_time"]))
    assert message.topic == topic
    assert json.loads(message.payload) == doc


@pytest.mark.parametrize("line", blocks("nxlink-crc"))
def test_checksum_examples(line: str) -> None:
    body, _, crc = line.rpartition(" = ")
    assert f"{crc16_ccitt_false(body.encode('ascii')):04X}" == crc


def test_every_message_type_is_documented_with_an_example() -> None:
    shown = {decode(line.split(" ", 1)[1].encode() + b"\r\n") for line in blocks("nxlink")}
    types = {p.type for p in shown if isinstance(p, Frame)}
    assert types == MESSAGE_TYPES
