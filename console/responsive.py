"""One layout for wide screens, another for phones: CSS on Streamlit's keyed containers.

Streamlit cannot tell the server how wide the browser is, so a page draws
both and the browser shows one. A table with many columns suits a desk; on a
390 px phone its last columns sit out of sight in the table's own scroll box,
so the phone gets one card per row instead.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

NARROW_PX = 640
"""Below this width Streamlit stacks columns too: the phone layout."""


def wide_and_narrow(key: str) -> tuple[Any, Any]:
    """Return (container shown on wide screens, container shown on phones) for ``key``."""
    # A container with key k gets the CSS class st-key-k (Streamlit 1.39 and later).
    st.html(
        "<style>"
        f"@media (max-width: {NARROW_PX}px) {{ .st-key-{key}-wide {{ display: none; }} }}"
        f"@media (min-width: {NARROW_PX + 1}px) {{ .st-key-{key}-narrow {{ display: none; }} }}"
        "</style>"
    )
    return st.container(key=f"{key}-wide"), st.container(key=f"{key}-narrow")
