"""nxlink typed messages: round trips and clear errors for bad fields."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_agent.drivers.base import (
    Door,
    Fault,
    Hello,
    Key,
    Restock,
    StockReport,
    Temperature,
    Vend,
)
from firmware_agent.nxlink.messages import (
    Authorise,
    Inventory,
    Lock,
    Message,
    MessageError,
    Ping,
    SlotConfig,
    Unlock,
    decode_message,
    message_fields,
)
from firmware_agent.wire.frames import Frame, FrameReader, decode, encode
from firmware_agent.wire.payloads import DoorState, VendResult

slots = st.integers(1, 99)
counts = st.integers(0, 10_000)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Hello, st.from_regex(r"\A[A-Za-z0-9._+-]{1,32}\Z"), st.integers(0, 99),
              st.integers(0, 2**32 - 1)),
    st.builds(Vend, slots, st.sampled_from(VendResult), st.booleans()),
    st.builds(StockReport, st.dictionaries(slots, counts, max_size=20)),
    st.builds(Restock, slots, counts),
    st.builds(Door, st.sampled_from(DoorState)),
    st.builds(Temperature, st.integers(-600, 1200).map(lambda t: t / 10)),
    st.builds(Fault, st.from_regex(r"\A[A-Z0-9_]{1,32}\Z"), st.none() | slots),
    st.builds(Key, st.from_regex(r"\A[0-9A-D#]{1,8}\Z")),
    st.sampled_from([Ping(), Inventory(), Lock(), Unlock()]),
    st.builds(SlotConfig, slots, st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,47}\Z"), counts),
    st.builds(Authorise, slots, st.integers(1, 3600)),
)


@settings(deadline=None)  # no per-example deadline on a shared, loaded machine
@given(messages, st.integers(0, 65535))
def test_message_round_trips_through_the_wire(message: Message, seq: int) -> None:
    kind, fields = message_fields(message)
    packet = decode(encode(Frame(seq, kind, fields)))
    assert isinstance(packet, Frame)
    assert decode_message(packet) == message


def test_known_fields() -> None:
    assert message_fields(Vend(3, VendResult.NO_DROP, False)) == ("VEND", ("3", "no-drop", "0"))
    assert message_fields(StockReport({2: 5, 1: 0})) == ("STOCK", ("1:0", "2:5"))
    assert message_fields(Temperature(-0.04)) == ("TEMP", ("0.0",))
    assert message_fields(Fault("MOTOR_STALL", 4)) == ("FAULT", ("MOTOR_STALL", "4"))


@pytest.mark.parametrize(
    ("kind", "fields", "reason"),
    [
        ("VEND", ("0", "ok", "1"), "slot 0 outside 1..99"),
        ("VEND", ("3", "maybe", "1"), "bad vend result"),
        ("VEND", ("3", "ok", "2"), "drop sensor flag"),
        ("VEND", ("3", "ok"), "expected 3 fields, got 2"),
        ("VEND", ("03", "ok", "1"), "not a decimal integer"),
        ("STOCK", ("1-4",), "not slot:count"),
        ("STOCK", ("1:4", "1:5"), "reported twice"),
        ("STOCK", ("1:10001",), "count 10001 outside"),
        ("TEMP", ("hot",), "not like 21.5"),
        ("TEMP", ("130.0",), "outside"),
        ("HELLO", ("fw 1", "4", "1"), "bad firmware"),
        ("HELLO", ("fw", "4", "4294967296"), "boot counter"),
        ("DOOR", ("ajar",), "bad door state"),
        ("KEY", ("12X",), "bad key code"),
        ("PING", ("1",), "expected 0 fields"),
        ("CFG", ("1", "Naloxone", "10"), "bad product"),
        ("AUTH", ("1", "0"), "ttl 0 outside"),
        ("WHAT", (), "unknown message type"),
    ],
)
def test_bad_fields_give_a_clear_error(kind: str, fields: tuple[str, ...], reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode_message(Frame(1, kind, fields))


def test_encoding_refuses_what_decoding_would_refuse() -> None:
    with pytest.raises(MessageError):
        message_fields(Vend(100, VendResult.OK))
    with pytest.raises(MessageError):
        message_fields(Temperature(float("nan")))
    with pytest.raises(MessageError):
        message_fields(Key("1*2"))


@settings(deadline=None)
@given(messages, st.integers(0, 65535), st.data())
def test_damaged_message_frames_never_reach_the_link(
    message: Message, seq: int, data: st.DataObject
) -> None:
    kind, fields = message_fields(message)
    raw = bytearray(encode(Frame(seq, kind, fields)))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    flipped = bytearray(raw)
    flipped[bit // 8] ^= 1 << (bit % 8)
    cut = data.draw(st.integers(0, len(raw) - 3))  # lose at least the last checksum digit
    reader = FrameReader()
    # A flipped bit and a frame cut short (then a line end) both come to nothing.
    assert list(reader.feed(bytes(flipped))) == []
    assert list(reader.feed(bytes(raw[:cut]) + b"\r\n")) == []
