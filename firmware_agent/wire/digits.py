"""Read unsigned decimal numbers from outside input: ASCII digits 0-9 and nothing else.

``str.isdigit()`` is true for ``²``, ``٣`` or ``①`` too, and ``int()`` takes
spaces, ``+``, ``_`` and non-ASCII decimal digits, so neither alone says "this
field is a count". Every reader of files, frames and payloads uses these two
functions instead (the agent and the backend both import ``firmware_agent.wire``).
"""

from __future__ import annotations

MAX_DIGITS = 18
"""Longest number read: 18 digits always fit a signed 64-bit database column."""


def is_ascii_digits(text: str) -> bool:
    """Return True if ``text`` is 1 to ``MAX_DIGITS`` ASCII digits and nothing else."""
    return 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()


def ascii_int(text: str) -> int | None:
    """Return the value of ``text`` if ``is_ascii_digits`` accepts it, else None."""
    return int(text) if is_ascii_digits(text) else None
