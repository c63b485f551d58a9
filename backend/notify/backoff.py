"""When to try a failed delivery again: exponential backoff with jitter (pure)."""

from __future__ import annotations

import random


def retry_delay(
    attempts: int, *, base_s: float, max_s: float, rand: random.Random | None = None
) -> float:
    """Return seconds to wait after the ``attempts``-th failed attempt.

    The ceiling doubles with every attempt up to ``max_s``; the delay is drawn
    between half the ceiling and the ceiling, so that many deliveries failing
    together do not all come back at once.
    """
    ceiling = min(max_s, base_s * 2 ** max(0, attempts - 1))
    draw: float = (rand or random).random()
    return float(ceiling * (0.5 + 0.5 * draw))
