"""Delivery-gap detection over a machine's sequence numbers (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class GapScan:
    """The new watermark and the holes that waited longer than the timeout."""

    watermark: int
    gaps: tuple[tuple[int, int], ...]


def scan_gaps(
    watermark: int | None,
    seen: Iterable[tuple[int, datetime]],
    *,
    now: datetime,
    timeout: timedelta,
) -> GapScan:
    """Advance the watermark over contiguous seqs; declare holes older than ``timeout``.

    ``seen`` holds (seq, received_at) of stored events above the watermark, in
    ascending seq order. A hole is dated by the arrival of the event just past
    it: that is when we first knew something was missing. A young hole stops
    the scan, so later holes wait for the next one.
    """
    ordered = list(seen)
    if not ordered:
        return GapScan(watermark if watermark is not None else -1, ())
    mark = watermark if watermark is not None else ordered[0][0] - 1
    gaps: list[tuple[int, int]] = []
    for seq, received_at in ordered:
        if seq <= mark:
            continue  # a seq repeated under another boot id
        if seq > mark + 1:
            if now - received_at < timeout:
                break
            gaps.append((mark + 1, seq - 1))
        mark = seq
    return GapScan(mark, tuple(gaps))
