"""Small helpers for the DEX tests."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "dex"
"""Real EVA-DTS files, copied into the repository with their licences."""


def read_sample(name: str) -> bytes:
    """Return the bytes of a real audit file from tests/data/dex."""
    return (DATA / name).read_bytes()
