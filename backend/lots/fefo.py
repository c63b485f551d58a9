"""First-expiry-first-out accounting of the lots in one slot: pure, no database.

A slot holds ``count`` items; some are in known lots (loaded by a recorded
visit, with lot number and expiry), the rest are ``untracked`` (stock that was
there before lots were recorded, or that a count found beyond the known lots).
Items leave in this order: untracked first (they were in the slot before any
recorded lot), then the known lots by earliest expiry. The invariant kept by
every operation: quantities are never negative and ``untracked + sum(lots) ==
count``; where nothing is untracked the lots account for the whole count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date


@dataclass(frozen=True, order=True)
class LotKey:
    """What names a lot in a slot: its expiry first, so that keys sort first-expiry-first."""

    expiry: date
    lot_number: str
    product: str


@dataclass(frozen=True)
class SlotLots:
    """A slot's count and the quantity of each known lot in it."""

    count: int
    lots: tuple[tuple[LotKey, int], ...] = ()

    @property
    def tracked(self) -> int:
        """Return how many items are in known lots."""
        return sum(q for _, q in self.lots)

    @property
    def untracked(self) -> int:
        """Return how many items are in the slot without a known lot."""
        return self.count - self.tracked

    def quantity(self, key: LotKey) -> int:
        """Return how many of lot ``key`` the slot holds."""
        return sum(q for k, q in self.lots if k == key)


class LotError(ValueError):
    """An operation asked for more of a lot than the slot holds."""


def _normal(lots: Iterable[tuple[LotKey, int]]) -> tuple[tuple[LotKey, int], ...]:
    merged: dict[LotKey, int] = {}
    for key, qty in lots:
        merged[key] = merged.get(key, 0) + qty
    return tuple(sorted((k, q) for k, q in merged.items() if q > 0))


def make(count: int, lots: Iterable[tuple[LotKey, int]]) -> SlotLots:
    """Build a slot's state from stored rows; lots beyond the count are trimmed first-expiry."""
    if count < 0:
        raise ValueError(f"a count cannot be negative ({count})")
    start = SlotLots(count=max(count, 0), lots=_normal(lots))
    return set_count(replace(start, count=max(count, start.tracked)), count)[0]


def set_count(state: SlotLots, count: int) -> tuple[SlotLots, tuple[tuple[LotKey, int], ...]]:
    """Adopt a new count; return the state and what left each lot.

    Fewer items than before means items left (vended, or the books were
    wrong): untracked ones first, then the earliest-expiring lots. More items
    than before are untracked until a visit names their lot.
    """
    if count < 0:
        raise ValueError(f"a count cannot be negative ({count})")
    gone = max(state.count - count, 0) - state.untracked
    taken: list[tuple[LotKey, int]] = []
    kept: list[tuple[LotKey, int]] = []
    for key, qty in state.lots:
        take = min(qty, max(gone, 0))
        gone -= take
        if take:
            taken.append((key, take))
        kept.append((key, qty - take))
    return SlotLots(count=count, lots=_normal(kept)), tuple(taken)


def vend(state: SlotLots) -> tuple[SlotLots, LotKey | None]:
    """Take one item out; return the state and the lot it came from (None: untracked or empty)."""
    after, taken = set_count(state, max(state.count - 1, 0))
    return after, (taken[0][0] if taken else None)


def load(state: SlotLots, key: LotKey, quantity: int) -> SlotLots:
    """Put ``quantity`` items of lot ``key`` into the slot."""
    if quantity < 0:
        raise ValueError(f"a loaded quantity cannot be negative ({quantity})")
    return SlotLots(count=state.count + quantity, lots=_normal((*state.lots, (key, quantity))))


def remove(state: SlotLots, key: LotKey | None, quantity: int) -> SlotLots:
    """Take ``quantity`` items out by hand: of lot ``key``, or untracked ones when None."""
    if quantity < 0:
        raise ValueError(f"a removed quantity cannot be negative ({quantity})")
    if key is None:
        if quantity > state.untracked:
            raise LotError(f"only {state.untracked} untracked items to remove, not {quantity}")
        return SlotLots(count=state.count - quantity, lots=state.lots)
    have = state.quantity(key)
    if quantity > have:
        raise LotError(f"lot {key.lot_number} holds {have}, cannot remove {quantity}")
    return SlotLots(count=state.count - quantity, lots=_normal((*state.lots, (key, -quantity))))
