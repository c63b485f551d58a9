"""The agent's local stock ledger per slot (pure).

A restock sets a slot's count, a successful vend takes one off, and a STOCK
report from the controller (which can sense what is really there) overrides
both. Every change bumps ``revision`` so consumers can order snapshots.

A slot's count is unknown (``None``) until a restock or a STOCK report says
what is in it: a vend from an unknown slot leaves it unknown, and snapshots
carry ``count: null`` for it, so that the agent never tells the backend "0"
when it only means "I have not been told".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from firmware_agent.wire.payloads import SlotStock, StockSnapshot


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


@dataclass(slots=True)
class SlotState:
    """What the agent believes one slot holds."""

    count: int | None = None
    product: str | None = None
    capacity: int | None = None


@dataclass(slots=True)
class Discrepancy:
    """A controller count that disagreed with the ledger."""

    slot: int
    expected: int
    reported: int


@dataclass(slots=True)
class Ledger:
    """Stock per slot, with a revision that grows on every change."""

    slots: dict[int, SlotState] = field(default_factory=dict)
    revision: int = 0

    def _slot(self, slot: int) -> SlotState:
        return self.slots.setdefault(slot, SlotState())

    def vend(self, slot: int) -> None:
        """Take one item off ``slot`` (never below zero: the controller will correct us)."""
        state = self._slot(slot)
        if state.count is not None:
            state.count = max(0, state.count - 1)
            self.revision += 1

    def restock(self, slot: int, count: int) -> None:
        """Set ``slot`` to ``count`` items."""
        self._slot(slot).count = count
        self.revision += 1

    def configure(self, slot: int, product: str, capacity: int) -> None:
        """Record what ``slot`` holds and how many fit."""
        state = self._slot(slot)
        state.product, state.capacity = product, capacity
        self.revision += 1

    def reconcile(self, counts: dict[int, int]) -> list[Discrepancy]:
        """Take the controller's counts as truth; return where the ledger disagreed."""
        found = []
        changed = False
        for slot, reported in sorted(counts.items()):
            state = self._slot(slot)
            if state.count == reported:
                continue
            if state.count is not None:
                found.append(Discrepancy(slot, state.count, reported))
            state.count = reported
            changed = True
        if changed:
            self.revision += 1
        return found

    def product(self, slot: int) -> str | None:
        """Return the product configured in ``slot``."""
        state = self.slots.get(slot)
        return None if state is None else state.product

    def snapshot(self, machine_id: str, boot_id: int, now: datetime) -> StockSnapshot:
        """Return the full stock as the retained ``stock`` payload."""
        return StockSnapshot(
            machine_id=machine_id,
            boot_id=boot_id,
            revision=self.revision,
            device_time=now,
            slots=tuple(
                SlotStock(slot=n, product=s.product, count=s.count, capacity=s.capacity)
                for n, s in sorted(self.slots.items())
            ),
        )

    def to_json(self) -> str:
        """Serialise for the store."""
        return json.dumps(
            {
                "revision": self.revision,
                "slots": {
                    str(n): [s.count, s.product, s.capacity] for n, s in self.slots.items()
                },
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Ledger:
        """Load what ``to_json`` wrote; raise ``ValueError`` if it is corrupt."""
        try:
            data = json.loads(text)
            slots = {
                int(n): SlotState(_optional_int(v[0]), v[1], _optional_int(v[2]))
                for n, v in data["slots"].items()
            }
            return cls(slots=slots, revision=int(data["revision"]))
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f"corrupt ledger: {exc!r}") from exc
