"""What data a principal sees: its areas, and which alerts its role works on.

An alert with a ``machine_id`` is about that machine (stock, offline, door...);
one without is about an area (overdose hotspots) or, for the types in
``SYSTEM_ALERT_TYPES``, about NaloxNet itself (a notification route that keeps
failing names a webhook or mailbox, which is configuration, not public health).
Outreach works on machine alerts, health on area alerts, admin on all three. A principal limited to
areas sees machines in those areas and their alerts, and the area alerts that
list one of those machines (``details.machines``). Whatever a
principal may not see behaves as if it did not exist (404), so that existence
does not leak.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from backend.auth.principal import Principal, Role
from backend.models import Alert, AlertType, Machine

MACHINE_ALERTS = "machine"
AREA_ALERTS = "area"
SYSTEM_ALERTS = "system"

SYSTEM_ALERT_TYPES: frozenset[str] = frozenset({AlertType.NOTIFICATION_FAILED.value})
"""Alert types about the system's own configuration: admin only, whatever the areas."""

ALERT_SUBJECTS: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset({MACHINE_ALERTS, AREA_ALERTS, SYSTEM_ALERTS}),
    Role.OUTREACH: frozenset({MACHINE_ALERTS}),
    Role.HEALTH: frozenset({AREA_ALERTS}),
    Role.PROVISIONING: frozenset(),
}


def alert_subject(machine_id: str | None, alert_type: str) -> str:
    """Say whether an alert is about a machine, an area or the system itself."""
    if machine_id is not None:
        return MACHINE_ALERTS
    return SYSTEM_ALERTS if alert_type in SYSTEM_ALERT_TYPES else AREA_ALERTS


def sees_machine_area(principal: Principal, area: str | None) -> bool:
    """Say whether a machine in ``area`` is visible to ``principal``."""
    return not principal.area_limited or (area is not None and area in principal.areas)


def machine_filter(principal: Principal, area_column: Any = None) -> ColumnElement[bool]:
    """Return a WHERE condition on machines (or a joined area column) for ``principal``."""
    column = col(Machine.area) if area_column is None else area_column
    if not principal.area_limited:
        return true()
    return column.in_(sorted(principal.areas))  # type: ignore[no-any-return,unused-ignore]


def _listed_machines(details: Any) -> set[str]:
    machines = details.get("machines") if isinstance(details, dict) else None
    return {m for m in machines if isinstance(m, str)} if isinstance(machines, list) else set()


def area_alert_ids(session: Session, principal: Principal) -> list[int]:
    """Return the ids of the area alerts that list a machine in one of the principal's areas."""
    mine = set(session.exec(select(col(Machine.id)).where(machine_filter(principal))).all())
    rows = session.exec(
        select(col(Alert.id), col(Alert.details)).where(
            col(Alert.machine_id).is_(None), col(Alert.type).not_in(sorted(SYSTEM_ALERT_TYPES))
        )
    ).all()
    return [
        alert_id
        for alert_id, details in rows
        if alert_id is not None and mine & _listed_machines(details)
    ]


def alert_filter(principal: Principal, session: Session) -> ColumnElement[bool]:
    """Return a WHERE condition on alerts for what ``principal`` sees."""
    kinds = ALERT_SUBJECTS[principal.role]
    machine_id = col(Alert.machine_id)
    is_system = col(Alert.type).in_(sorted(SYSTEM_ALERT_TYPES))
    parts: list[ColumnElement[bool]] = []
    if SYSTEM_ALERTS in kinds:
        # System alerts name no machine or area: area limits do not apply.
        parts.append(and_(machine_id.is_(None), is_system))
    if MACHINE_ALERTS in kinds:
        parts.append(
            machine_id.in_(select(col(Machine.id)).where(machine_filter(principal)))
            if principal.area_limited else machine_id.is_not(None)
        )
    if AREA_ALERTS in kinds:
        # Area alerts carry the machines they concern (a hotspot lists those
        # in its cluster); few enough to filter here.
        parts.append(
            col(Alert.id).in_(area_alert_ids(session, principal))
            if principal.area_limited else and_(machine_id.is_(None), not_(is_system))
        )
    if len(parts) == 3:
        return true()
    return or_(*parts) if parts else false()


def sees_alert(session: Session, principal: Principal, alert: Alert) -> bool:
    """Say whether one alert is visible to ``principal``."""
    kind = alert_subject(alert.machine_id, alert.type)
    if kind not in ALERT_SUBJECTS[principal.role]:
        return False
    if kind == SYSTEM_ALERTS or not principal.area_limited:
        return True
    listed = {alert.machine_id} if alert.machine_id else _listed_machines(alert.details)
    if not listed:
        return False
    in_scope = select(col(Machine.id)).where(
        col(Machine.id).in_(sorted(listed)), machine_filter(principal)
    )
    found = session.exec(in_scope).first()
    return found is not None
