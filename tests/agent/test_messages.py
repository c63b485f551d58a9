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
    EventId,
    Inventory,
    Lock,
    Message,
    MessageError,
    Ping,
    SlotConfig,
    Unlock,
    decode_message,
    message_fields,
    split_event_id,
)
from firmware_agent.wire.frames import Frame, FrameReader, decode, encode
from firmware_agent.wire.payloads import DoorState, VendResult

slots = st.integers(1, 99)
counts = st.integers(0, 10_000)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Hello, st.from_regex(r"\A[A-Za-z0-9._+-]{1,32}\Z"), st.integers(0, 99),
              st.integers(0, 2**32 - 1), st.integers(1, 99)),
    # Only an "ok" vend may have a confirmed drop (docs/nxlink.md 7.1).
    st.builds(Vend, slots, st.sampled_from(VendResult), st.just(False)),
    st.builds(Vend, slots, st.just(VendResult.OK), st.just(True)),
    st.builds(StockReport, st.dictionaries(slots, counts, max_size=20)),
    st.integers(1, 99).flatmap(lambda n: st.builds(
        StockReport, st.dictionaries(slots, counts, max_size=20), st.integers(1, n),
        st.just(n))),
    st.builds(Restock, slots, counts),
    st.builds(Door, st.sampled_from(DoorState)),
    st.builds(Temperature, st.integers(-600, 1200).map(lambda t: t / 10)),
    st.builds(Fault, st.from_regex(r"\A[A-Z0-9_]{1,32}\Z"), st.none() | slots),
    st.builds(Key, st.from_regex(r"\A[0-9A-D#*]{1,8}\Z")),
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
        ("VEND", ("3", "jam", "1"), "drop sensor saw an item fall"),
        ("VEND", ("3", "empty", "1"), "drop sensor saw an item fall"),
        ("VEND", ("3", "no-drop", "1"), "drop sensor saw an item fall"),
        ("VEND", ("3", "refused", "1"), "drop sensor saw an item fall"),
        ("STOCK", ("3/2", "1:4"), "part after the last"),
        ("STOCK", ("0/2", "1:4"), "not slot:count"),
        ("HELLO", ("fw", "4", "1", "0"), "protocol 0 outside"),
        ("HELLO", ("fw", "4", "1", "2", "x"), "expected 3..4 fields"),
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
    # "*" has an encoding now (S); a letter outside the keypad's still has none.
    with pytest.raises(MessageError):
        message_fields(Key("1E2"))
    with pytest.raises(MessageError):
        message_fields(Key("1S2"))


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


def test_undefined_combinations_now_have_a_meaning() -> None:
    # ok without a confirmed drop is a dispense the machine could not confirm.
    assert decode_message(Frame(1, "VEND", ("3", "ok", "0"))) == Vend(3, VendResult.OK, False)
    assert decode_message(Frame(1, "VEND", ("3", "refused", "0"))) == Vend(
        3, VendResult.REFUSED, False)
    assert decode_message(Frame(1, "STOCK", ())) == StockReport({})
    assert decode_message(Frame(1, "STOCK", ("2/3",))) == StockReport({}, 2, 3)
    assert decode_message(Frame(1, "STOCK", ("2/3", "4:1"))) == StockReport({4: 1}, 2, 3)
    assert decode_message(Frame(1, "HELLO", ("fw", "4", "9"))) == Hello("fw", 4, 9, 1)
    assert decode_message(Frame(1, "KEY", ("S2#",))) == Key("*2#")
    assert message_fields(Key("*2#")) == ("KEY", ("S2#",))


@pytest.mark.parametrize(("fields", "event_id", "rest"), [
    (("3", "ok", "1", "E17.4"), EventId(17, 4), ("3", "ok", "1")),
    (("EEPROM", "E0.0"), EventId(0, 0), ("EEPROM",)),
    (("EEPROM",), None, ("EEPROM",)),
    (("E4294967295.65535",), EventId(2**32 - 1, 65535), ()),
])
def test_event_id_is_the_last_field_of_an_event(
    fields: tuple[str, ...], event_id: EventId | None, rest: tuple[str, ...],
) -> None:
    frame, found = split_event_id(Frame(5, "VEND" if len(fields) > 2 else "FAULT", fields))
    assert found == event_id
    assert frame.fields == rest


@pytest.mark.parametrize("bad", ["E01.4", "E17.65536", "E4294967296.1", "E1.2.3", "E.1"])
def test_malformed_event_ids_are_refused(bad: str) -> None:
    with pytest.raises(MessageError, match="event id"):
        split_event_id(Frame(5, "DOOR", ("open", bad)))


def test_commands_and_hello_carry_no_event_id() -> None:
    frame = Frame(5, "CFG", ("3", "E1.2", "10"))
    assert split_event_id(frame) == (frame, None)
