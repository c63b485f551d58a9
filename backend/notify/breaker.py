"""A circuit breaker per destination: a dead endpoint is left alone for a while (pure state)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0


class Breakers:
    """Open a destination's circuit after ``threshold`` failures in a row, for ``cooldown_s``.

    While open, the dispatcher claims nothing for the destination; after the
    cooldown the next delivery is a trial: success closes the circuit, failure
    opens it again at once.
    """

    def __init__(
        self, *, threshold: int, cooldown_s: float, clock: Callable[[], float] = monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def is_open(self, key: str) -> bool:
        """Say whether deliveries to ``key`` are held back now."""
        with self._lock:
            state = self._states.get(key)
            return state is not None and state.open_until > self._clock()

    def open_keys(self) -> set[str]:
        """Return the destinations held back now."""
        now = self._clock()
        with self._lock:
            return {key for key, state in self._states.items() if state.open_until > now}

    def succeeded(self, key: str) -> None:
        """Close ``key``'s circuit."""
        with self._lock:
            self._states.pop(key, None)

    def failed(self, key: str) -> bool:
        """Count a failure of ``key``; return whether its circuit is now open."""
        with self._lock:
            state = self._states.setdefault(key, _State())
            state.failures += 1
            if state.failures >= self.threshold:
                state.open_until = self._clock() + self.cooldown_s
                return True
            return False
