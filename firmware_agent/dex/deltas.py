"""Turn successive audits into dispenses by counter deltas (pure logic, no I/O).

An audit carries lifetime counters, not events. The baseline is the counters of
the last audit whose dispenses the agent has made durable; the next audit minus
the baseline is what happened in between. A dispense is a paid or a free vend
(harm-reduction machines dispense for free); test vends are not dispenses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from firmware_agent.dex.audit import Audit, DexEvent

log = logging.getLogger(__name__)

MAX_PLAUSIBLE_DELTA = 1_000
"""More dispenses than this from one selection between two audits is a counter glitch.

A naloxone machine holds a few hundred items; even days offline cannot explain more.
"""


@dataclass(frozen=True, slots=True)
class EventState:
    """What the baseline remembers of one event code."""

    key: str
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class Baseline:
    """Counters of the last committed audit."""

    machine_serial: str | None
    counters: Mapping[str, int] = field(default_factory=dict)
    events: Mapping[str, EventState] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict for the baseline file."""
        return {
            "machine_serial": self.machine_serial,
            "counters": dict(self.counters),
            "events": {c: {"key": e.key, "active": e.active} for c, e in self.events.items()},
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> Baseline:
        """Rebuild a baseline from ``to_json_dict`` output; raise ValueError if malformed."""
        try:
            serial = data["machine_serial"]
            counters = {str(k): int(v) for k, v in data["counters"].items()}
            events = {
                str(c): EventState(key=str(e["key"]), active=e.get("active"))
                for c, e in data["events"].items()
            }
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"malformed DEX baseline: {exc!r}") from exc
        if serial is not None and not isinstance(serial, str):
            raise ValueError("malformed DEX baseline: machine_serial is not a string")
        if any(v < 0 for v in counters.values()):
            raise ValueError("malformed DEX baseline: negative counter")
        return cls(machine_serial=serial, counters=counters, events=events)


@dataclass(frozen=True, slots=True)
class EventChange:
    """An event code that happened again, or stopped being active, since the baseline."""

    event: DexEvent
    new_occurrence: bool
    ended: bool


@dataclass(frozen=True, slots=True)
class Delta:
    """What happened between the baseline and an audit."""

    vends: dict[str, int]
    resets: tuple[str, ...]
    events: tuple[EventChange, ...]
    baseline: Baseline
    first_audit: bool = False


def baseline_of(audit: Audit, *, since_reset: bool = False) -> Baseline:
    """Return the baseline that ``audit`` establishes on its own."""
    counters = {}
    for sel in audit.selections:
        dispensed = sel.dispensed(since_reset=since_reset)
        if dispensed is not None:
            counters[sel.id] = dispensed
    events = {ev.code: EventState(ev.occurrence_key(), ev.active) for ev in audit.events}
    return Baseline(audit.identity.serial, counters, events)


def _event_changes(old: Mapping[str, EventState], audit: Audit) -> list[EventChange]:
    changes = []
    for ev in audit.events:
        before = old.get(ev.code)
        happened = before is None or before.key != ev.occurrence_key()
        was_active = before is not None and before.active is True
        ended = ev.active is not True and (happened or was_active)
        if happened or ended:
            changes.append(EventChange(ev, new_occurrence=happened, ended=ended))
    return changes


def diff(
    baseline: Baseline | None,
    audit: Audit,
    *,
    max_delta: int = MAX_PLAUSIBLE_DELTA,
    since_reset: bool = False,
) -> Delta:
    """Compare ``audit`` with ``baseline``; never returns a negative or implausible count.

    ``since_reset`` counts with fields 03 ("since reset") instead of 01, for
    machines that put their never-cleared counters there.
    """
    current = baseline_of(audit, since_reset=since_reset)
    if baseline is None:
        return Delta({}, (), (), current, first_audit=True)
    if baseline.machine_serial != current.machine_serial:
        log.warning(
            "DEX machine serial changed from %r to %r: counters re-baselined, no vends emitted",
            baseline.machine_serial,
            current.machine_serial,
        )
        return Delta({}, tuple(sorted(current.counters)), (), current, first_audit=True)
    vends: dict[str, int] = {}
    resets: list[str] = []
    counters = dict(baseline.counters)
    for selection_id, now in current.counters.items():
        before = baseline.counters.get(selection_id)
        counters[selection_id] = now
        if before is None:
            # A selection the baseline never saw: its lifetime count is not news.
            log.info("DEX selection %s appeared with count %d: baselined", selection_id, now)
            continue
        change = now - before
        if change < 0 or change > max_delta:
            log.warning(
                "DEX counter of selection %s went from %d to %d: treated as a reset, re-baselined",
                selection_id,
                before,
                now,
            )
            resets.append(selection_id)
        elif change:
            vends[selection_id] = change
    events = dict(baseline.events)
    events.update(current.events)
    new_baseline = Baseline(current.machine_serial, counters, events)
    return Delta(vends, tuple(resets), tuple(_event_changes(baseline.events, audit)), new_baseline)
