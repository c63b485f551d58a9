"""Which dead letters a machine may still leave: the per-machine quota (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from backend.ingest.parse import Rejected
from firmware_agent.wire.topics import PREFIX

NO_MACHINE = "?"
"""The key of a topic outside the machine tree (ingest never subscribes to one)."""


def topic_machine(topic: str) -> str:
    """Return the machine id a topic names (its 4th level, unchecked), or ``NO_MACHINE``."""
    prefix = PREFIX + "/"
    if not topic.startswith(prefix):
        return NO_MACHINE
    return topic[len(prefix) :].partition("/")[0][:63] or NO_MACHINE


@dataclass(frozen=True)
class Quota:
    """Dead letters one machine may keep within the window."""

    count: int
    bytes: int


@dataclass(frozen=True)
class Usage:
    """Dead letters one machine keeps within the window so far."""

    count: int = 0
    bytes: int = 0


@dataclass
class Drops:
    """Malformed messages of one machine left out of the dead letters."""

    count: int = 0
    bytes: int = 0


@dataclass
class Split:
    """A batch's rejected messages: those to store, and per machine what was dropped."""

    kept: list[Rejected] = field(default_factory=list)
    dropped: dict[str, Drops] = field(default_factory=dict)

    @property
    def dropped_count(self) -> int:
        """Messages dropped, over all machines."""
        return sum(d.count for d in self.dropped.values())


def apply_quota(rejected: Sequence[Rejected], usage: Mapping[str, Usage], quota: Quota) -> Split:
    """Keep each malformed message that still fits its machine's quota, in arrival order.

    Messages that are valid but have nowhere to go (``malformed`` false: an
    unregistered machine's events) are always kept: only junk is rationed.
    """
    split = Split()
    used = dict(usage)
    for item in rejected:
        if not item.malformed:
            split.kept.append(item)
            continue
        machine = topic_machine(item.message.topic)
        size = len(item.message.payload)
        now = used.get(machine, Usage())
        if now.count + 1 <= quota.count and now.bytes + size <= quota.bytes:
            used[machine] = Usage(now.count + 1, now.bytes + size)
            split.kept.append(item)
        else:
            drops = split.dropped.setdefault(machine, Drops())
            drops.count += 1
            drops.bytes += size
    return split
