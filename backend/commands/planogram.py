"""A planogram the machine confirmed becomes the backend's: slots' product, capacity, par, low.

The admin's change is sent as a ``planogram`` command; until the machine answers
``ok`` the backend keeps the old values, so what it plans and alerts on is what
the machine really holds. Called by ingest in the transaction that records the
answer, only for the first answer that settles the command.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from backend.audit import record_audit, snapshot
from backend.commands.store import get_command
from backend.models import Slot

log = logging.getLogger(__name__)

PLANOGRAM_FIELDS = ("product", "capacity", "par", "low_threshold")


def apply_confirmed_planogram(
    *, session: Session, machine_id: str, command_id: str, now: datetime
) -> int:
    """Write a confirmed planogram command's slots to the slot table; return how many changed."""
    row = get_command(session=session, machine_id=machine_id, command_id=command_id)
    if row is None or row.kind != "planogram":
        return 0
    before: dict[str, dict[str, object]] = {}
    after: dict[str, dict[str, object]] = {}
    for spec in row.payload.get("slots", []):
        number = int(spec["slot"])
        slot = session.get(Slot, (machine_id, number))
        if slot is None:
            # A slot the books did not have: empty until a count says otherwise.
            slot = Slot(machine_id=machine_id, slot=number, count=0)
            session.add(slot)
        old = snapshot(slot, PLANOGRAM_FIELDS)
        slot.product = spec["product"]
        slot.capacity = int(spec["capacity"])
        # Unset par: fill to capacity, as registration does; unset threshold: the default.
        par = spec.get("par")
        slot.par = int(par) if par is not None else slot.capacity
        low = spec.get("low_threshold")
        slot.low_threshold = int(low) if low is not None else slot.low_threshold
        new = snapshot(slot, PLANOGRAM_FIELDS)
        if new != old:
            slot.updated_at = now
            before[str(number)], after[str(number)] = old, new
    if after:
        # Who asked for it is who sent the command; the machine only confirmed it.
        record_audit(session, actor=row.created_by, action="machine.planogram",
                     object_type="machine", object_id=machine_id,
                     before={"slots": before, "command_id": command_id},
                     after={"slots": after, "command_id": command_id})
    session.flush()
    log.info("machine %s confirmed planogram %s: %d slots changed", machine_id, command_id,
             len(after))
    return len(after)
