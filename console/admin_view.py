"""Pure decisions of the Admin page: machine rows, edits, the planogram command, command states.

What the machine itself must know (products, capacities, par, low thresholds)
goes to it as a ``planogram`` command and stays "pending" until it answers;
the backend adopts it then (backend/commands/planogram.py). Name, site and
place are the backend's alone and change at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from console.api_models import CommandState, MachineCommand, MachinePublic
from console.fleet_view import HEALTH_LABELS

# The agent's and the broker's rules (firmware_agent/wire), checked here so a typo is
# pointed out beside the field rather than as a 422.
MACHINE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{1,62}")
PRODUCT_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")
MAX_COUNT: Final = 10_000
MAX_SLOT: Final = 99
PLANOGRAM_COLUMNS: Final = ("slot", "product", "capacity", "par", "low_threshold")
STATE_WORDS: Final = {
    CommandState.PENDING: ":material/hourglass_empty: pending",
    CommandState.DONE: ":material/check_circle: done",
    CommandState.FAILED: ":material/error: failed",
    CommandState.EXPIRED: ":material/timer_off: expired",
}


@dataclass(frozen=True)
class Draft:
    """A request body to send, or the problems to fix first (never both)."""

    body: dict[str, Any] | None
    problems: list[str]


def machine_rows(machines: Iterable[MachinePublic]) -> list[dict[str, Any]]:
    """Return the admin's machine table: id, name, site, place, state, slots."""
    return [
        {
            "machine": m.id,
            "name": m.name,
            "site": m.site or "",
            "lat": m.lat,
            "lon": m.lon,
            "state": HEALTH_LABELS[m.health],
            "slots": len(m.slots),
            "firmware": m.firmware or "",
        }
        for m in sorted(machines, key=lambda m: m.id)
    ]


def _text(value: str | None) -> str:
    return (value or "").strip()


def _bad_text(value: str) -> bool:
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value)


def device_body(*, machine_id: str, name: str, lat: float | None, lon: float | None,
                site: str, area: str) -> Draft:
    """Return the ``POST /api/v1/devices`` body for a new machine, or what to fix."""
    problems: list[str] = []
    mid = _text(machine_id)
    if not MACHINE_ID.fullmatch(mid):
        problems.append("Machine id: 2-63 lower-case letters, digits, - or _, "
                        "starting with a letter or digit (it is also its MQTT user).")
    if not _text(name) or _bad_text(name):
        problems.append("Name: required, printable text.")
    if lat is None or lon is None:
        problems.append("Latitude and longitude are required.")
    body: dict[str, Any] = {"machine_id": mid, "name": _text(name), "lat": lat, "lon": lon}
    if _text(site):
        body["site"] = _text(site)
    if _text(area):
        body["area"] = _text(area)
    return Draft(None if problems else body, problems)


def place_changes(machine: MachinePublic, *, name: str, site: str, lat: float | None,
                  lon: float | None) -> Draft:
    """Return the ``PATCH /api/v1/machines/{id}`` body with only what changed, or what to fix."""
    problems: list[str] = []
    changes: dict[str, Any] = {}
    if not _text(name) or _bad_text(name):
        problems.append("Name: required, printable text.")
    elif _text(name) != machine.name:
        changes["name"] = _text(name)
    new_site = _text(site) or None
    if new_site is not None and _bad_text(new_site):
        problems.append("Site: printable text only.")
    elif new_site != machine.site:
        changes["site"] = new_site  # None clears it
    if lat is None or lon is None:
        problems.append("Latitude and longitude cannot be cleared.")
    else:
        if lat != machine.lat:
            changes["lat"] = lat
        if lon != machine.lon:
            changes["lon"] = lon
    if problems:
        return Draft(None, problems)
    if not changes:
        return Draft(None, ["Nothing changed."])
    return Draft(changes, [])


def planogram_rows(machine: MachinePublic) -> list[dict[str, Any]]:
    """Return the machine's slots as editable rows (what the books hold now)."""
    return [
        {"slot": s.slot, "product": s.product or "", "capacity": s.capacity,
         "par": s.par, "low_threshold": s.low_threshold}
        for s in sorted(machine.slots, key=lambda s: s.slot)
    ]


def with_new_slots(rows: Sequence[dict[str, Any]], extra: int) -> list[dict[str, Any]]:
    """Return ``rows`` and ``extra`` blank rows numbered after the highest slot."""
    top = max((int(r["slot"]) for r in rows), default=0)
    blank = [{"slot": top + n, "product": "", "capacity": 0, "par": None, "low_threshold": None}
             for n in range(1, extra + 1) if top + n <= MAX_SLOT]
    return [*rows, *blank]


def _whole(value: Any) -> int | None:
    """Return a cell as a whole number, None when blank; ValueError when it is not one."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _slot_config(row: Mapping[str, Any], problems: list[str]) -> dict[str, Any] | None:
    try:
        slot = _whole(row.get("slot"))
        capacity = _whole(row.get("capacity"))
        par = _whole(row.get("par"))
        low = _whole(row.get("low_threshold"))
    except (TypeError, ValueError):
        problems.append(f"Slot {row.get('slot')}: numbers must be whole numbers.")
        return None
    product = _text(str(row.get("product") or ""))
    if not product and not capacity:
        return None  # a new slot's row left blank
    where = f"Slot {slot}"
    before = len(problems)
    if slot is None or not 1 <= slot <= MAX_SLOT:
        problems.append(f"{where}: slot numbers run from 1 to {MAX_SLOT}.")
    if not PRODUCT_CODE.fullmatch(product):
        problems.append(f"{where}: product must be a code such as naloxone-nasal-4mg.")
    if capacity is None or not 0 <= capacity <= MAX_COUNT:
        problems.append(f"{where}: capacity from 0 to {MAX_COUNT} is required.")
    elif par is not None and not 0 <= par <= capacity:
        problems.append(f"{where}: par must be between 0 and the capacity ({capacity}).")
    if low is not None and not 0 <= low <= (par if par is not None else capacity or 0):
        problems.append(f"{where}: the low threshold must be between 0 and par.")
    if len(problems) > before:
        return None
    config: dict[str, Any] = {"slot": slot, "product": product, "capacity": capacity}
    if par is not None:
        config["par"] = par
    if low is not None:
        config["low_threshold"] = low
    return config


def planogram_command(rows: Sequence[Mapping[str, Any]],
                      current: Sequence[Mapping[str, Any]]) -> Draft:
    """Return the ``planogram`` command body for the edited rows, or what to fix."""
    problems: list[str] = []
    configs = [c for c in (_slot_config(row, problems) for row in rows) if c is not None]
    numbers = [c["slot"] for c in configs]
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    if repeated:
        problems.append(f"Slot {', '.join(map(str, repeated))} appears more than once.")
    if problems:
        return Draft(None, problems)
    if not configs:
        return Draft(None, ["A planogram needs at least one slot."])
    ordered = sorted(configs, key=lambda c: c["slot"])
    if [_comparable(r) for r in ordered] == sorted(
            (_comparable(r) for r in current if r.get("product")), key=lambda r: r[0]):
        return Draft(None, ["Nothing changed."])
    return Draft({"kind": "planogram", "slots": ordered}, [])


def _comparable(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(column) for column in PLANOGRAM_COLUMNS)


def command_line(command: MachineCommand) -> str:
    """Return one line saying what a command asked and where it stands."""
    state = STATE_WORDS.get(command.state, command.state.value)
    what = command.kind
    if command.kind == "planogram":
        slots = command.payload.get("slots", [])
        what = "planogram: " + "; ".join(
            f"slot {s.get('slot')} {s.get('product')} cap {s.get('capacity')} "
            f"par {s.get('par', '–')} low {s.get('low_threshold', '–')}" for s in slots)
    sent = f"sent {command.send_count}×" if command.send_count else "not sent yet"
    line = f"**{state}** · {what} · {sent} · by {command.created_by}"
    if command.result is not None and command.result.error:
        line += f" · machine said: {command.result.error}"
    return line


def pending(commands: Iterable[MachineCommand]) -> list[MachineCommand]:
    """Return the commands still waiting for the machine's answer."""
    return [c for c in commands if c.state is CommandState.PENDING]
