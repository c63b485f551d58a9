"""The nxlink frame codec: round trips, and nothing but real frames decodes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_agent.wire.crc import crc16_ccitt_false
from firmware_agent.wire.frames import (
    SEQ_MODULUS,
    Ack,
    Frame,
    FrameError,
    FrameReader,
    Packet,
    decode,
    encode,
    next_seq,
)

FIELD_ALPHABET = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "$*,")

frames = st.builds(
    Frame,
    seq=st.integers(0, SEQ_MODULUS - 1),
    type=st.from_regex(r"\A[A-Z][A-Z0-9]{0,7}\Z").filter(lambda t: t != "ACK"),
    fields=st.lists(st.text(FIELD_ALPHABET, max_size=12), max_size=8).map(tuple),
)
packets: st.SearchStrategy[Packet] = st.one_of(
    frames, st.builds(Ack, seq=st.integers(0, SEQ_MODULUS - 1))
)


def test_crc_matches_the_catalogue_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_known_frame_bytes() -> None:
    assert encode(Frame(7, "VEND", ("3", "ok", "1"))) == b"$7,VEND,3,ok,1*F950\r\n"
    assert decode(b"$7,VEND,3,ok,1*F950\r\n") == Frame(7, "VEND", ("3", "ok", "1"))


@given(packets)
def test_round_trip(packet: Packet) -> None:
    assert decode(encode(packet)) == packet


@given(st.lists(packets, max_size=10), st.integers(1, 40))
def test_reader_reassembles_any_chunking(items: list[Packet], chunk: int) -> None:
    stream = b"".join(encode(p) for p in items)
    reader = FrameReader()
    out = [p for i in range(0, len(stream), chunk) for p in reader.feed(stream[i : i + chunk])]
    assert out == items
    assert reader.bad_frames == 0


@given(packets, st.data())
def test_single_bit_flip_never_decodes(packet: Packet, data: st.DataObject) -> None:
    raw = bytearray(encode(packet))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(FrameError):
        decode(bytes(raw))


@given(packets, st.data())
def test_truncated_frame_never_decodes(packet: Packet, data: st.DataObject) -> None:
    raw = encode(packet)
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert list(FrameReader().feed(raw[:cut])) == []


@given(st.binary(max_size=300))
def test_random_bytes_only_yield_checked_frames(noise: bytes) -> None:
    # Whatever noise decodes must re-encode to bytes present in the noise: the
    # reader never invents a frame.
    for packet in FrameReader().feed(noise):
        assert encode(packet) in noise


@given(st.binary(max_size=200).filter(lambda b: b"\n" not in b), packets)
def test_next_good_frame_is_read_after_noise(noise: bytes, packet: Packet) -> None:
    reader = FrameReader()
    list(reader.feed(noise + b"\r\n"))  # whatever the noise held, the reader moves on
    assert list(reader.feed(encode(packet))) == [packet]


def test_non_canonical_sequence_numbers_are_refused() -> None:
    body = b"007,PING"
    raw = b"$" + body + b"*" + f"{crc16_ccitt_false(body):04X}".encode() + b"\r\n"
    with pytest.raises(FrameError):
        decode(raw)


def test_sequence_numbers_wrap() -> None:
    assert next_seq(SEQ_MODULUS - 1) == 0
    assert next_seq(41) == 42


@pytest.mark.parametrize("bad", ["a$b", "a*b", "a,b", "tab\there", "é"])
def test_fields_with_framing_characters_are_refused(bad: str) -> None:
    with pytest.raises(FrameError):
        Frame(1, "KEY", (bad,))


@pytest.mark.parametrize("checksum", [b" DFE", b"0DF ", b"0_FE", b"0dfe", b"+DFE"])
def test_a_checksum_that_int_would_read_is_still_refused(checksum: bytes) -> None:
    # Found by the bit-flip property: one bit turned the '0' of "0DFE" into a space,
    # which int(..., 16) reads as the same number.
    good = encode(Frame(16295, "RESTOCK", ("14", "336")))
    assert good.endswith(b"*0DFE\r\n")
    damaged = good[:-6] + checksum + b"\r\n"
    with pytest.raises(FrameError):
        decode(damaged)
    assert list(FrameReader().feed(damaged)) == []
