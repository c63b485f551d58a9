"""The fleet as the API holds it in memory: one JSON fragment per machine, and what changed when.

Pure logic, no database: backend/api/fleet_read.py reads rows and changes,
backend/api/snapshot.py keeps a store current and renders responses from it.

A ``Cursor`` names a state of the database. On PostgreSQL it is a snapshot
(``pg_current_snapshot()``: ``xmin:xmax:xip,...``): a change made by
transaction ``x`` is in the state when ``x`` is visible in the snapshot, which
holds whatever order the writers commit in. On SQLite writers take turns, so
the change log's ids are in commit order and the cursor ``n:n:`` holds every
change whose id is below ``n``. Both read the same way, so the rest of the code
does not care which database it runs on, and any replica reading the same
database gives and accepts the same cursors.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CURSOR_PATTERN = r"^[0-9]{1,20}:[0-9]{1,20}:([0-9]{1,20}(,[0-9]{1,20}){0,199})?$"
"""A cursor as clients send it back: PostgreSQL's snapshot text, bounded."""

_CURSOR = re.compile(CURSOR_PATTERN)
_DIGEST_MOD = 1 << 128
_GENERATIONS = itertools.count(1)
"""Unique across stores: a rendering of a store read again is never taken for current."""


@dataclass(frozen=True)
class Cursor:
    """A state of the database: which changes it holds."""

    xmin: int
    xmax: int
    xip: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        """Read a cursor from its text; None if it is not one."""
        if not _CURSOR.match(text):
            return None
        xmin, xmax, xip = text.split(":")
        running = frozenset(int(x) for x in xip.split(",")) if xip else frozenset()
        if int(xmin) > int(xmax) or any(not int(xmin) <= x < int(xmax) for x in running):
            return None
        return cls(int(xmin), int(xmax), running)

    @classmethod
    def after(cls, last_id: int) -> Cursor:
        """Return the SQLite cursor that holds changes up to id ``last_id``."""
        return cls(last_id + 1, last_id + 1)

    def holds(self, change: int) -> bool:
        """Say whether the change made by transaction (or log id) ``change`` is in this state."""
        return change < self.xmin or (change < self.xmax and change not in self.xip)

    def covers(self, other: Cursor) -> bool:
        """Say whether every change ``other`` holds is held here too (``other`` is not newer)."""
        # What is not held here: ids from xmax on, and the running ones.
        return other.xmax <= self.xmax and not any(other.holds(x) for x in self.xip)

    def __str__(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(str(x) for x in sorted(self.xip))}"


@dataclass(frozen=True)
class MachineEntry:
    """What the fleet snapshot shows of one active machine: its area and its JSON."""

    id: str
    area: str | None
    fragment: bytes
    """One ``MachinePublic`` as compact JSON."""

    def digest(self) -> int:
        """Hash the entry to a number; the sum over a set of entries names that set."""
        return int.from_bytes(hashlib.blake2b(self.fragment, digest_size=16).digest(), "big")


@dataclass(frozen=True)
class Batch:
    """The changes one refresh brought in, and the state after it."""

    at: float
    cursor: Cursor
    changes: tuple[tuple[int, str], ...]
    """(transaction or log id, machine id) pairs."""
    areas: Mapping[str, frozenset[str | None]]
    """Each changed machine's area before and after: who may be told it left."""


@dataclass
class _Areas:
    """A running sum of entry digests per area: the state of any set of areas, in O(areas)."""

    sums: dict[str | None, int] = field(default_factory=dict)
    counts: dict[str | None, int] = field(default_factory=dict)

    def add(self, entry: MachineEntry, sign: int) -> None:
        self.sums[entry.area] = (self.sums.get(entry.area, 0) + sign * entry.digest()) % _DIGEST_MOD
        self.counts[entry.area] = self.counts.get(entry.area, 0) + sign


class FleetStore:
    """Every active machine's entry, the cursor they were read at, and recent changes.

    ``delta`` answers "what changed since cursor C" for any C between ``base``
    (the state before the oldest change still kept) and ``cursor``.
    """

    def __init__(self, cursor: Cursor, entries: Iterable[MachineEntry], *, at: float,
                 base: Cursor | None = None, changes: Iterable[tuple[int, str]] = ()) -> None:
        """Start at ``cursor``; ``changes`` (all those not held by ``base``) make older
        cursors answerable."""
        self._lock = threading.Lock()
        self.cursor = cursor
        self.base = cursor if base is None else base
        self.generation = next(_GENERATIONS)
        """Goes up whenever an entry's JSON changes; renderings are kept per generation."""
        self.loaded_at = at
        self._entries: dict[str, MachineEntry] = {}
        self._order: list[str] | None = None
        self._areas = _Areas()
        self._batches: deque[Batch] = deque()
        for entry in entries:
            self._put(entry)
        kept = tuple(changes)
        if kept:
            areas = {m: frozenset({e.area}) for _, m in kept if (e := self._entries.get(m))}
            self._batches.append(Batch(at, cursor, kept, areas))

    def _put(self, entry: MachineEntry) -> None:
        old = self._entries.get(entry.id)
        if old is not None:
            self._areas.add(old, -1)
        else:
            self._order = None
        self._entries[entry.id] = entry
        self._areas.add(entry, 1)

    def _drop(self, machine_id: str) -> None:
        old = self._entries.pop(machine_id, None)
        if old is not None:
            self._areas.add(old, -1)
            self._order = None

    def apply(self, cursor: Cursor, changes: Iterable[tuple[int, str]],
              read: Mapping[str, MachineEntry | None], *, at: float) -> bool:
        """Move to ``cursor``: ``read`` holds each changed machine as it is now (None: gone).

        Returns whether any machine's JSON changed.
        """
        changed = False
        areas: dict[str, frozenset[str | None]] = {}
        with self._lock:
            for machine_id, entry in read.items():
                old = self._entries.get(machine_id)
                areas[machine_id] = frozenset(
                    e.area for e in (old, entry) if e is not None)
                if entry is None:
                    changed |= old is not None
                    self._drop(machine_id)
                elif old is None or old.fragment != entry.fragment or old.area != entry.area:
                    changed = True
                    self._put(entry)
            # Every change is kept, even one that left the JSON as it was: a client
            # whose cursor came from another replica may hold a state in between.
            kept = tuple(changes)
            if kept:
                self._batches.append(Batch(at, cursor, kept, areas))
            self.cursor = cursor
            if changed:
                self.generation = next(_GENERATIONS)
        return changed

    def forget_before(self, at: float) -> None:
        """Drop batches applied before ``at``; cursors older than what remains get full listings."""
        with self._lock:
            while self._batches and self._batches[0].at < at:
                self.base = self._batches.popleft().cursor

    def delta(self, since: Cursor) -> dict[str, set[str | None]] | None:
        """Return the machines changed since ``since``, each with the areas it was in meanwhile.

        None when it cannot be told: ``since`` is older than ``base`` or newer
        than ``cursor`` (a cursor from a replica that has read further: refresh,
        then ask again).
        """
        with self._lock:
            if not (since.covers(self.base) and self.cursor.covers(since)):
                return None
            found: dict[str, set[str | None]] = {}
            for batch in reversed(self._batches):
                if since.covers(batch.cursor):
                    break  # this batch and every older one are held by ``since``
                for change, machine_id in batch.changes:
                    if not since.holds(change):
                        found.setdefault(machine_id, set()).update(
                            batch.areas.get(machine_id, ()))
            return found

    def ids(self, areas: frozenset[str]) -> list[str]:
        """Return the ids of the machines in ``areas`` (all when empty), in id order."""
        with self._lock:
            if self._order is None:
                self._order = sorted(self._entries)
            order = self._order
            if not areas:
                return order
            return [m for m in order if self._entries[m].area in areas]

    def fragments(self, ids: Iterable[str]) -> list[bytes]:
        """Return the JSON of those of ``ids`` that are in the store, in the order given."""
        with self._lock:
            return [e.fragment for m in ids if (e := self._entries.get(m)) is not None]

    def area_of(self, machine_id: str) -> tuple[bool, str | None]:
        """Return whether ``machine_id`` is an active machine of the snapshot, and its area."""
        with self._lock:
            entry = self._entries.get(machine_id)
            return (False, None) if entry is None else (True, entry.area)

    def state(self, areas: frozenset[str]) -> tuple[int, int]:
        """Return (digest, count) of the machines in ``areas`` (all when empty).

        Equal on every replica that read the same rows with the same settings,
        whatever order the changes came in: the ETag is made from it.
        """
        with self._lock:
            keys: Iterable[str | None] = areas if areas else self._areas.sums.keys()
            digest = sum(self._areas.sums.get(a, 0) for a in keys) % _DIGEST_MOD
            return digest, sum(self._areas.counts.get(a, 0) for a in keys)
