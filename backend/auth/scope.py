"""What data a principal sees: its areas, and which alerts its role works on.

An alert with a ``machine_id`` is about that machine (stock, offline, door...);
one without is about an area (today: overdose hotspots). Outreach works on
machine alerts, health on area alerts, admin on both. A principal limited to
areas sees machines in those areas and their alerts; area alerts are not tied
to a named area, so an area-limited principal does not see them. Whatever a
principal may not see behaves as if it did not exist (404), so that existence
does not leak.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, select, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from backend.auth.principal import Principal, Role
from backend.models import Alert, Machine

MACHINE_ALERTS = "machine"
AREA_ALERTS = "area"

ALERT_SUBJECTS: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset({MACHINE_ALERTS, AREA_ALERTS}),
    Role.OUTREACH: frozenset({MACHINE_ALERTS}),
    Role.HEALTH: frozenset({AREA_ALERTS}),
    Role.PROVISIONING: frozenset(),
}


def alert_subject(machine_id: str | None) -> str:
    """Say whether an alert is about a machine or about an area."""
    return AREA_ALERTS if machine_id is None else MACHINE_ALERTS


def sees_machine_area(principal: Principal, area: str | None) -> bool:
    """Say whether a machine in ``area`` is visible to ``principal``."""
    return not principal.area_limited or (area is not None and area in principal.areas)


def machine_filter(principal: Principal, area_column: Any = None) -> ColumnElement[bool]:
    """Return a WHERE condition on machines (or a joined area column) for ``principal``."""
    column = col(Machine.area) if area_column is None else area_column
    if not principal.area_limited:
        return true()
    return column.in_(sorted(principal.areas))  # type: ignore[no-any-return,unused-ignore]


def alert_filter(principal: Principal) -> ColumnElement[bool]:
    """Return a WHERE condition on alerts for what ``principal`` sees."""
    kinds = ALERT_SUBJECTS[principal.role]
    machine_id = col(Alert.machine_id)
    parts: list[ColumnElement[bool]] = []
    if MACHINE_ALERTS in kinds:
        if principal.area_limited:
            in_areas = select(col(Machine.id)).where(machine_filter(principal))
            parts.append(machine_id.in_(in_areas))
        else:
            parts.append(machine_id.is_not(None))
    if AREA_ALERTS in kinds and not principal.area_limited:
        parts.append(machine_id.is_(None))
    if not parts:
        return false()
    if len(parts) == 1:
        return parts[0]
    return true()  # both kinds, unrestricted


def sees_alert(principal: Principal, machine_id: str | None, machine_area: str | None) -> bool:
    """Say whether one alert (of a machine in ``machine_area``, if any) is visible."""
    kind = alert_subject(machine_id)
    if kind not in ALERT_SUBJECTS[principal.role]:
        return False
    if kind == AREA_ALERTS:
        return not principal.area_limited
    return sees_machine_area(principal, machine_area)
