"""When the simulated outreach team visits: a machine empty for a while gets refilled.

Pure bookkeeping of when each slot ran out, so the demo keeps moving
without anyone at the keyboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class RestockPolicy:
    """Refill a whole machine once any of its slots has been empty for ``delay``."""

    delay: timedelta
    empty_since: dict[tuple[str, int], datetime] = field(default_factory=dict)

    def slot_empty(self, machine_id: str, slot: int, when: datetime) -> None:
        """Note that a slot ran out at ``when`` (only the first note counts)."""
        self.empty_since.setdefault((machine_id, slot), when)

    def due(self, now: datetime) -> list[str]:
        """Return machines (sorted) with a slot empty for at least ``delay``."""
        ready = {m for (m, _), since in self.empty_since.items() if now - since >= self.delay}
        return sorted(ready)

    def visited(self, machine_id: str) -> None:
        """Forget the empty slots of a machine that was just refilled."""
        for key in [k for k in self.empty_since if k[0] == machine_id]:
            del self.empty_since[key]
