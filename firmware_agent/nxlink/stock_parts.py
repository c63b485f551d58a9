"""Join a STOCK report sent in several frames, so only whole reports reach the ledger (pure).

A controller numbers the parts of one report ``1/n`` .. ``n/n`` and sends
them as consecutive frames, so the number the first part had (its event id,
or failing that its frame number) names the report. One report is collected
at a time; a part of another report starts over (the old one was never
finished, and its counts are already out of date). The collection is part
of the driver's durable state: parts already ACKed must not be lost to an
agent restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from firmware_agent.drivers.base import StockReport
from firmware_agent.nxlink.messages import EventId
from firmware_agent.wire.frames import SEQ_MODULUS

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StockAssembler:
    """The STOCK report being collected, if any."""

    key: tuple[str, int, int] | None = None
    """("E", boot, first seq) from event ids, or ("S", 0, first frame number)."""
    parts: int = 0
    got: dict[int, dict[int, int]] = field(default_factory=dict)

    def add(self, report: StockReport, seq: int, event_id: EventId | None) -> StockReport | None:
        """Take one part; return the whole report once every part is in."""
        if report.parts == 1:
            return report
        offset = report.part - 1
        key = (("E", event_id.boot, (event_id.seq - offset) % SEQ_MODULUS) if event_id
               else ("S", 0, (seq - offset) % SEQ_MODULUS))
        if key != self.key or report.parts != self.parts:
            if self.key is not None:
                log.warning("STOCK report %s left with %d of %d parts; a new one began",
                            self.key, len(self.got), self.parts)
            self.key, self.parts, self.got = key, report.parts, {}
        self.got[report.part] = dict(report.counts)
        if len(self.got) < self.parts:
            return None
        counts: dict[int, int] = {}
        for part in sorted(self.got):
            counts.update(self.got[part])
        self.clear()
        return StockReport(counts)

    def peer_restarted(self) -> None:
        """Drop a report named by frame numbers: the rebooted peer numbers afresh."""
        if self.key is not None and self.key[0] == "S":
            self.clear()

    def clear(self) -> None:
        """Forget the report being collected."""
        self.key, self.parts, self.got = None, 0, {}

    def to_json(self) -> dict[str, Any] | None:
        """Return the collection as JSON-ready data (``None`` if there is none)."""
        if self.key is None:
            return None
        return {"key": list(self.key), "parts": self.parts,
                "got": {str(p): {str(s): c for s, c in counts.items()}
                        for p, counts in self.got.items()}}

    @classmethod
    def from_json(cls, data: Any) -> StockAssembler:
        """Rebuild from ``to_json``; raise ``ValueError`` if the data is not one."""
        if data is None:
            return cls()
        try:
            kind, boot, first = data["key"]
            got = {int(p): {int(s): int(c) for s, c in counts.items()}
                   for p, counts in data["got"].items()}
            parts = int(data["parts"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"unreadable STOCK parts: {exc}") from exc
        if kind not in ("E", "S") or not isinstance(boot, int) or not isinstance(first, int):
            raise ValueError("unreadable STOCK parts key")
        return cls((kind, boot, first), parts, got)
