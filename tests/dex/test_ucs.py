"""UCS framing without a port: CRC, blocks, and the incremental token reader."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from firmware_agent.dex import ucs
from firmware_agent.dex.crc import dex_crc16


def test_crc_check_value() -> None:
    assert dex_crc16(b"123456789") == 0xBB3D  # CRC-16/ARC catalogue check value


def test_block_layout() -> None:
    block = ucs.encode_block(b"ST*001*0001\r\n", last=False)
    assert block[:2] == bytes([ucs.DLE, ucs.STX])
    assert block[-4:-2] == bytes([ucs.DLE, ucs.ETB])
    crc = dex_crc16(b"ST*001*0001\r\n" + bytes([ucs.ETB]))
    assert block[-2:] == bytes([crc & 0xFF, crc >> 8])


printable = st.binary(max_size=600).map(lambda b: bytes(x for x in b if x != ucs.DLE))


@given(
    payload=printable, last=st.booleans(), header=st.booleans(), cuts=st.lists(st.integers(1, 50))
)
def test_any_split_of_a_stream_decodes_the_same(
    payload: bytes, last: bool, header: bool, cuts: list[int]
) -> None:
    stream = (
        bytes([ucs.ENQ]) + ucs.ACK0 + ucs.encode_block(payload, header=header, last=last)
        + bytes([ucs.NAK]) + ucs.ACK1 + bytes([ucs.EOT])
    )
    reader = ucs.TokenReader(max_payload=1000)
    tokens: list[ucs.Token] = []
    pos = 0
    for cut in cuts:
        tokens += reader.feed(stream[pos : pos + cut])
        pos += cut
    tokens += reader.feed(stream[pos:])
    assert tokens == [
        ucs.Control(ucs.ENQ), ucs.Ack(0), ucs.Block(payload, header, last, crc_ok=True),
        ucs.Control(ucs.NAK), ucs.Ack(1), ucs.Control(ucs.EOT),
    ]


def test_flipped_byte_fails_the_crc() -> None:
    block = bytearray(ucs.encode_block(b"PA1*1*0*NALOXONE\r\n"))
    block[5] ^= 0x01
    (token,) = ucs.TokenReader().feed(bytes(block))
    assert isinstance(token, ucs.Block)
    assert not token.crc_ok


def test_noise_is_reported_and_reader_resynchronises() -> None:
    tokens = ucs.TokenReader().feed(b"\xff\xfegarbage" + bytes([ucs.ENQ]))
    assert isinstance(tokens[0], ucs.Noise)
    assert tokens[-1] == ucs.Control(ucs.ENQ)


def test_runaway_block_becomes_noise() -> None:
    reader = ucs.TokenReader(max_payload=10)
    tokens = reader.feed(bytes([ucs.DLE, ucs.STX]) + b"x" * 50)
    assert tokens
    assert isinstance(tokens[0], ucs.Noise)


def test_handshake_payloads() -> None:
    request = ucs.operation_request("NALOXNET01", "R")
    assert request == b"NALOXNET01RR00L06"
    assert ucs.parse_operation_request(request) == ("NALOXNET01", "R")
    ident = ucs.parse_identification(ucs.identification("VMD1"))
    assert (ident.response_code, ident.comm_id, ident.revision) == ("00", "VMD1000000", "R00L06")


def test_chunking_keeps_every_byte() -> None:
    data = bytes(range(32, 127)) * 9
    parts = ucs.chunk(data, 245)
    assert b"".join(parts) == data
    assert max(len(p) for p in parts) == 245
    assert ucs.chunk(b"") == [b""]
