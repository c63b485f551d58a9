"""Bad input never crashes: the parser, the token reader and the link under random bytes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from firmware_agent.dex import ucs
from firmware_agent.dex.audit import Audit
from firmware_agent.dex.parser import DexParseError, parse_audit
from tests.dex.helpers import read_sample

SAMPLE = read_sample("nec-kalea.evadts.txt")

segment_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x17F), max_size=40
)


def outcome(data: bytes | str) -> Audit | DexParseError:
    """Return the parsed audit or the parse error; anything else propagates and fails."""
    try:
        return parse_audit(data)
    except DexParseError as exc:
        return exc


@given(data=st.binary(max_size=2000))
def test_parser_on_random_bytes_only_raises_its_own_error(data: bytes) -> None:
    result = outcome(data)
    if isinstance(result, DexParseError):
        assert result.line >= 0
        assert str(result)


@given(
    tag=st.sampled_from(["PA1", "PA2", "PA3", "PA4", "PA5", "VA1", "ID1", "ID4", "ID5",
                         "EA1", "EA2", "MA5", "G85", "SE", "DXE", "CB1"]),
    fields=st.lists(segment_text, max_size=8),
    position=st.integers(0, 190),
)
# Found by chance on main: "²" (0xB2 read as Latin-1) passes str.isdigit() but not int().
@example(tag="EA2", fields=["EJJ", "\u00b2"], position=20)
@example(tag="EA1", fields=["EJJ", "20230101", "1200", "\u00b2"], position=20)
@example(tag="PA1", fields=["1", "\u00b2"], position=20)
@example(tag="PA5", fields=["\u00b2"], position=20)
@example(tag="ID4", fields=["\u00b3"], position=3)
@example(tag="SE", fields=["\u00b9"], position=20)
def test_parser_on_a_damaged_real_file(tag: str, fields: list[str], position: int) -> None:
    lines = SAMPLE.decode().split("\n")
    lines.insert(position, "*".join([tag, *fields]))
    result = outcome("\n".join(lines))
    if isinstance(result, DexParseError):
        assert 1 <= result.line <= len(lines)  # ok: a refusal must name a line of the file
    else:
        assert result.identity.communication_id == "NEC0000000"


TRAILER = SAMPLE.rindex(b"DXE")


@given(cut=st.integers(1, len(SAMPLE) - 1))
@example(cut=TRAILER + 2)  # "DX": the trailer is gone
# Found by `make fuzz`: "DXE*" keeps the trailer, only its fields are cut off.
@example(cut=TRAILER + 4)
def test_truncated_real_file_parses_or_fails_cleanly(cut: int) -> None:
    result = outcome(SAMPLE[:cut])
    if isinstance(result, Audit):
        # Complete means the SE/DXE trailer is there (docs/dex.md), whatever follows its tag.
        assert result.complete == (cut >= TRAILER + len(b"DXE"))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.binary(max_size=64), max_size=30))
def test_token_reader_never_raises_and_keeps_its_buffer_bounded(chunks: list[bytes]) -> None:
    reader = ucs.TokenReader(max_payload=300)
    for chunk in chunks:
        for token in reader.feed(chunk):
            assert isinstance(token, ucs.Control | ucs.Ack | ucs.Block | ucs.Noise)
    assert reader.buffered <= 300 + 8


@pytest.mark.parametrize("name", ["animo.eva_dts", "rhevendors.eva_dts"])
def test_every_single_byte_flip_is_caught_by_the_block_crc(name: str) -> None:
    payload = read_sample(name)[:245]
    block = ucs.encode_block(payload)
    for index in range(2, len(block) - 4):
        if block[index] ^ 0x20 == ucs.DLE:
            continue
        damaged = bytearray(block)
        damaged[index] ^= 0x20
        tokens = ucs.TokenReader().feed(bytes(damaged))
        assert not any(isinstance(t, ucs.Block) and t.crc_ok for t in tokens)
