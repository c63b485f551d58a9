"""One ASCII-digit check for every number read from outside input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_agent.wire.digits import MAX_DIGITS, ascii_int, is_ascii_digits


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("007", 7),
        ("1936", 1936),
        ("9" * MAX_DIGITS, int("9" * MAX_DIGITS)),
        ("", None),
        ("\u00b2", None),  # superscript two: isdigit() says yes, int() says no
        ("\u0663", None),  # Arabic-Indic three: int() would read 3
        ("\u2460", None),  # circled one
        ("1\u00b2", None),
        (" 7", None),  # int() strips blanks
        ("+7", None),
        ("-7", None),
        ("1_000", None),  # int() takes underscores
        ("9" * (MAX_DIGITS + 1), None),  # past a 64-bit column; int() refuses past 4300
        ("12a", None),
    ],
)
def test_ascii_int(text: str, value: int | None) -> None:
    assert ascii_int(text) == value
    assert is_ascii_digits(text) is (value is not None)


@given(st.text(max_size=30))
def test_accepted_text_always_converts_and_round_trips(text: str) -> None:
    value = ascii_int(text)
    if value is not None:
        assert text.lstrip("0").rjust(1, "0") == str(value)
