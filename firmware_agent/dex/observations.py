"""Map an audit delta to driver observations (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from firmware_agent.dex.audit import Audit
from firmware_agent.dex.deltas import Delta
from firmware_agent.drivers.base import Door, Fault, Hello, Observation, Temperature, Vend
from firmware_agent.wire.digits import ascii_int
from firmware_agent.wire.payloads import DoorState, VendResult

DOOR_EVENT_CODES = frozenset({"EGS"})
"""EA event codes that mean the machine's door (EGS: door open/close in EVA-DTS)."""
_FAULT_PREFIX = "DEX_"


def fault_code(event_code: str) -> str:
    """Return a FaultEvent code (``[A-Z0-9_]{1,32}``) for a machine's EA event code."""
    cleaned = re.sub(r"[^A-Z0-9]+", "_", event_code.upper()).strip("_") or "UNKNOWN"
    return (_FAULT_PREFIX + cleaned)[:32]


def slot_for(selection_id: str, slot_map: Mapping[str, int] | None = None) -> int | None:
    """Return the slot a selection feeds: mapped, else its own number if 1..99, else None."""
    if slot_map and selection_id in slot_map:
        return slot_map[selection_id]
    number = ascii_int(selection_id)
    return number if number is not None and 1 <= number <= 99 else None


@dataclass(frozen=True, slots=True)
class Mapped:
    observations: list[Observation]
    unmapped_vends: dict[str, int]


def hello_for(audit: Audit) -> Hello:
    """Return the Hello that introduces a DEX machine."""
    ident = audit.identity
    firmware = ident.control_board_firmware or ident.model or "unknown"
    return Hello(firmware=f"dex:{firmware}"[:64], slot_count=len(audit.selections), boot_counter=0)


def observations_for(
    delta: Delta, audit: Audit, slot_map: Mapping[str, int] | None = None
) -> Mapped:
    """Return the observations an audit delta stands for, in a stable order."""
    out: list[Observation] = []
    unmapped: dict[str, int] = {}
    for selection_id in sorted(delta.vends, key=lambda s: (len(s), s)):
        count = delta.vends[selection_id]
        slot = slot_for(selection_id, slot_map)
        if slot is None:
            unmapped[selection_id] = count
            continue
        out.extend(Vend(slot=slot, result=VendResult.OK) for _ in range(count))
    for change in delta.events:
        code = change.event.code
        if code in DOOR_EVENT_CODES:
            if change.new_occurrence:
                out.append(Door(DoorState.OPEN))
            if change.ended:
                out.append(Door(DoorState.CLOSED))
        elif change.new_occurrence:
            out.append(Fault(code=fault_code(code)))
    if audit.temperature_c is not None and -60 <= audit.temperature_c <= 120:
        out.append(Temperature(audit.temperature_c))
    return Mapped(out, unmapped)
