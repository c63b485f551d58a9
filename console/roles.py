"""What each role may see and do in the console: pure tables, no Streamlit, no HTTP.

The backend decides (``backend/api/policy.py`` and ``backend/auth/scope.py``);
these tables only keep the console from offering what the API would refuse.
tests/console/test_roles_policy.py checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class Role(StrEnum):
    """The API's roles, as ``GET /api/v1/auth/me`` names them."""

    ADMIN = "admin"
    OUTREACH = "outreach"
    HEALTH = "health"
    PROVISIONING = "provisioning"


class PageKey(StrEnum):
    """The console's pages."""

    FLEET_MAP = "fleet_map"
    ALERTS = "alerts"
    HOTSPOTS = "hotspots"
    TRENDS = "trends"
    RESTOCK = "restock"
    MACHINE = "machine"
    TOKENS = "tokens"
    AUDIT = "audit"
    NOTIFICATIONS = "notifications"
    ADMIN = "admin"
    ACCOUNT = "account"


class Action(StrEnum):
    """What a page may offer besides reading."""

    ACT_ON_MACHINE_ALERTS = "act_on_machine_alerts"
    """Acknowledge and resolve alerts about one machine (stock, offline, door...)."""
    ACT_ON_AREA_ALERTS = "act_on_area_alerts"
    """Acknowledge and resolve alerts about an area (overdose hotspots)."""
    RECORD_VISIT = "record_visit"
    VIEW_HOTSPOTS = "view_hotspots"
    MANAGE_TOKENS = "manage_tokens"
    READ_AUDIT = "read_audit"
    MANAGE_NOTIFICATIONS = "manage_notifications"
    MANAGE_MACHINES = "manage_machines"
    """Register machines, edit them, send them planograms."""


PAGE_ORDER: Final[tuple[PageKey, ...]] = tuple(PageKey)
"""Navigation order: the map first, the account last."""

PAGES: Final[Mapping[Role, frozenset[PageKey]]] = {
    Role.ADMIN: frozenset(PageKey),
    Role.OUTREACH: frozenset(
        {PageKey.FLEET_MAP, PageKey.ALERTS, PageKey.RESTOCK, PageKey.MACHINE, PageKey.ACCOUNT}
    ),
    # The fleet read-only, the alerts about areas, hotspots and dispense trends (the
    # overdose proxy); restock is outreach work.
    Role.HEALTH: frozenset({PageKey.FLEET_MAP, PageKey.ALERTS, PageKey.HOTSPOTS, PageKey.TRENDS,
                            PageKey.MACHINE, PageKey.ACCOUNT}),
    # A deployment pipeline registers machines through the API; it reads no fleet.
    Role.PROVISIONING: frozenset({PageKey.ACCOUNT}),
}

ACTIONS: Final[Mapping[Role, frozenset[Action]]] = {
    Role.ADMIN: frozenset(Action),
    Role.OUTREACH: frozenset({Action.ACT_ON_MACHINE_ALERTS, Action.RECORD_VISIT}),
    Role.HEALTH: frozenset({Action.ACT_ON_AREA_ALERTS, Action.VIEW_HOTSPOTS}),
    Role.PROVISIONING: frozenset(),
}

PURPOSE: Final[Mapping[Role, str]] = {
    Role.ADMIN: "everything: fleet, alerts, restock, hotspots, machines, tokens, the audit trail",
    Role.OUTREACH: "fleet, machine alerts (acknowledge, resolve), restock plans and visits",
    Role.HEALTH: "hotspots, dispense trends and area alerts (acknowledge, resolve), the fleet "
                 "read-only",
    Role.PROVISIONING: "register and revoke machines (for a deployment pipeline)",
}
"""What each role is for, in one line (the account page and the demo show it)."""


def parse_role(value: str) -> Role | None:
    """Return the role named ``value``, or None for a role this console does not know."""
    try:
        return Role(value)
    except ValueError:
        return None


def pages_for(role: Role) -> list[PageKey]:
    """Return the pages ``role`` sees, in navigation order."""
    allowed = PAGES[role]
    return [page for page in PAGE_ORDER if page in allowed]


def may(role: Role, action: Action) -> bool:
    """Say whether the console offers ``action`` to ``role``."""
    return action in ACTIONS[role]


def may_act_on_alert(role: Role, machine_id: str | None) -> bool:
    """Say whether ``role`` may acknowledge or resolve an alert (area alerts have no machine)."""
    wanted = Action.ACT_ON_AREA_ALERTS if machine_id is None else Action.ACT_ON_MACHINE_ALERTS
    return may(role, wanted)
