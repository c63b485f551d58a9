"""Stock accounting for one slot: pure rules, no database.

The books change only for a reason: a restock sets the count, a successful
vend takes one away, and a stock report from the controller, a DEX audit or
a person counting is reconciled against the books. When two accounts
disagree the difference is returned as a ``Discrepancy`` carrying both
numbers, to be stored; the count never goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# The low-stock threshold of a slot that has none of its own (NX_DEFAULT_LOW_THRESHOLD).
DEFAULT_LOW_THRESHOLD = 2


class StockSource(StrEnum):
    """Who gave the number that changed or checked the books."""

    VEND = "vend"
    RESTOCK = "restock"
    CONTROLLER = "controller"
    DEX = "dex"
    VISIT = "visit"


@dataclass(frozen=True)
class Discrepancy:
    """The books said ``expected``; ``source`` says ``observed``."""

    source: StockSource
    expected: int
    observed: int


@dataclass(frozen=True)
class Change:
    """The outcome of one operation on a slot's count."""

    before: int
    after: int
    source: StockSource
    discrepancy: Discrepancy | None = None


def vend(count: int) -> Change:
    """Take one item out; a vend from an empty slot is a discrepancy, not -1."""
    if count > 0:
        return Change(count, count - 1, StockSource.VEND)
    # The machine dispensed what the books say is not there: the books were
    # wrong by at least one; keep zero and say so.
    return Change(count, 0, StockSource.VEND, Discrepancy(StockSource.VEND, count - 1, 0))


class OverCapacityError(ValueError):
    """A count that the slot cannot physically hold."""


def restock(
    count: int, new_count: int, source: StockSource = StockSource.RESTOCK, *, capacity: int = 0
) -> Change:
    """Set the count after someone loaded the slot; the restock itself is the reason.

    ``capacity`` 0 means the slot's capacity is not known (a slot first heard of
    in a report without one), so only a known capacity bounds the count.
    """
    if new_count < 0:
        raise ValueError(f"a restock cannot set a negative count ({new_count})")
    if 0 < capacity < new_count:
        raise OverCapacityError(f"the slot holds at most {capacity}, not {new_count}")
    return Change(count, new_count, source)


def reconcile(count: int, reported: int, source: StockSource) -> Change:
    """Adopt a physical report, recording a discrepancy when it disagrees with the books."""
    if reported < 0:
        raise ValueError(f"a stock report cannot be negative ({reported})")
    if reported == count:
        return Change(count, count, source)
    return Change(count, reported, source, Discrepancy(source, count, reported))


def already_counted(event_time: datetime, stock_as_of: datetime | None) -> bool:
    """Tell whether an event is already reflected in the last adopted stock report.

    The agent publishes a report after applying each event, so a report at
    device time T includes every event of that machine up to T. An event that
    arrives after such a report (topics are not ordered against each other)
    must not be applied a second time.
    """
    return stock_as_of is not None and event_time <= stock_as_of


def effective_low_threshold(own: int | None, default: int) -> int:
    """Return a slot's low-stock threshold: its own, or the fleet default when it has none."""
    return default if own is None else own


def is_low(count: int, low_threshold: int) -> bool:
    """Return whether a slot is at or below its low-stock threshold."""
    return count <= low_threshold


def is_empty(count: int) -> bool:
    """Return whether a slot is empty."""
    return count == 0
