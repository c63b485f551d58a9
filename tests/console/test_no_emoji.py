"""The console draws no emoji: headless Chromium without an emoji font showed them as boxes.

Icons are Material Symbols (Streamlit ships that font, so they draw offline); what
an icon means is always said in words beside it.
"""

from __future__ import annotations

import re
from pathlib import Path

import console

# Pictographs, dingbats, miscellaneous symbols and technical (⏳ ⌛), and the emoji
# variation selector. Geometric shapes such as ● and ◯ are in every text font.
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2300-\u23FF\u2B00-\u2BFF\uFE0F]")


def test_no_console_source_uses_an_emoji() -> None:
    sources = sorted(Path(console.__file__).parent.rglob("*.py"))
    assert len(sources) > 20  # the walk found the console
    found = [f"{path.name}:{n}: {line.strip()}" for path in sources
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if EMOJI.search(line)]
    assert found == []
