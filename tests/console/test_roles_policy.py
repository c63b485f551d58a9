"""The console's role tables agree with the backend's policy table and alert scopes.

The console imports nothing from the backend; this test may, and fails when
one side changes without the other.
"""

from __future__ import annotations

import pytest

from backend.api import policy
from backend.auth import principal as backend_principal
from backend.auth import scope
from console import roles
from console.roles import Action, PageKey, Role

ROUTES_READ_BY_PAGE: dict[PageKey, list[tuple[str, str]]] = {
    PageKey.FLEET_MAP: [("GET", "/api/v1/machines"), ("GET", "/api/v1/alerts"),
                        ("GET", "/api/v1/areas")],
    PageKey.ALERTS: [("GET", "/api/v1/alerts"), ("GET", "/api/v1/machines")],
    PageKey.HOTSPOTS: [("GET", "/api/v1/hotspots"), ("GET", "/api/v1/hotspots/{alert_id}/series"),
                       ("GET", "/api/v1/machines"), ("GET", "/api/v1/areas")],
    PageKey.TRENDS: [("GET", "/api/v1/stats/dispenses"), ("GET", "/api/v1/stats/today")],
    PageKey.RESTOCK: [("GET", "/api/v1/machines"), ("GET", "/api/v1/restock/plan"),
                      ("GET", "/api/v1/restock/plans/{plan_id}")],
    PageKey.MACHINE: [("GET", "/api/v1/machines"), ("GET", "/api/v1/machines/{machine_id}"),
                      ("GET", "/api/v1/machines/{machine_id}/temperatures"),
                      ("GET", "/api/v1/machines/{machine_id}/stock-history"),
                      ("GET", "/api/v1/machines/{machine_id}/discrepancies")],
    PageKey.TOKENS: [("GET", "/api/v1/tokens")],
    PageKey.AUDIT: [("GET", "/api/v1/audit")],
    PageKey.NOTIFICATIONS: [("GET", "/api/v1/notification-routes"),
                            ("GET", "/api/v1/notifications")],
    PageKey.ADMIN: [("GET", "/api/v1/machines"),
                    ("GET", "/api/v1/machines/{machine_id}/commands")],
    PageKey.ACCOUNT: [("GET", "/api/v1/auth/me")],
}
"""What each page must be able to read to draw itself."""

PAGE_PURPOSE_ROUTE: dict[PageKey, tuple[str, str]] = {
    PageKey.FLEET_MAP: ("GET", "/api/v1/machines"),
    PageKey.ALERTS: ("GET", "/api/v1/alerts"),
    PageKey.HOTSPOTS: ("GET", "/api/v1/hotspots"),
    PageKey.TRENDS: ("GET", "/api/v1/stats/dispenses"),
    PageKey.RESTOCK: ("POST", "/api/v1/visits"),
    PageKey.MACHINE: ("GET", "/api/v1/machines/{machine_id}"),
    PageKey.TOKENS: ("POST", "/api/v1/tokens"),
    PageKey.AUDIT: ("GET", "/api/v1/audit"),
    PageKey.NOTIFICATIONS: ("POST", "/api/v1/notification-routes"),
    PageKey.ADMIN: ("PATCH", "/api/v1/machines/{machine_id}"),
    PageKey.ACCOUNT: ("GET", "/api/v1/auth/me"),
}
"""The route a page exists for: a role that may call it should see the page."""

ROUTES_OF_ACTION: dict[Action, list[tuple[str, str]]] = {
    Action.MANAGE_MACHINES: [
        ("POST", "/api/v1/devices"),
        ("PATCH", "/api/v1/machines/{machine_id}"),
        ("POST", "/api/v1/machines/{machine_id}/commands"),
        ("GET", "/api/v1/machines/{machine_id}/commands"),
    ],
    # Whoever records visits may also issue the plan the team follows.
    Action.RECORD_VISIT: [("POST", "/api/v1/visits"), ("POST", "/api/v1/restock/plans")],
    # The fleet map's dispense heat comes from the (suppressed) export, to the API's day.
    Action.VIEW_HOTSPOTS: [("GET", "/api/v1/hotspots"),
                           ("GET", "/api/v1/exports/dispenses.geojson"),
                           ("GET", "/api/v1/stats/today")],
    Action.MANAGE_TOKENS: [
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens/{name}/revoke"),
    ],
    Action.READ_AUDIT: [("GET", "/api/v1/audit")],
    Action.MANAGE_NOTIFICATIONS: [
        ("GET", "/api/v1/notification-routes"),
        ("POST", "/api/v1/notification-routes"),
        ("DELETE", "/api/v1/notification-routes/{route_id}"),
        ("POST", "/api/v1/notification-routes/{route_id}/test"),
        ("GET", "/api/v1/notifications"),
    ],
    Action.ACT_ON_MACHINE_ALERTS: [
        ("POST", "/api/v1/alerts/{alert_id}/acknowledge"),
        ("POST", "/api/v1/alerts/{alert_id}/resolve"),
    ],
    Action.ACT_ON_AREA_ALERTS: [
        ("POST", "/api/v1/alerts/{alert_id}/acknowledge"),
        ("POST", "/api/v1/alerts/{alert_id}/resolve"),
    ],
}
ALERT_KIND_OF_ACTION = {
    Action.ACT_ON_MACHINE_ALERTS: scope.MACHINE_ALERTS,
    Action.ACT_ON_AREA_ALERTS: scope.AREA_ALERTS,
}


def _allowed(role: Role, route: tuple[str, str]) -> bool:
    backend_role = backend_principal.Role(role.value)
    return policy.allows(policy.access_for(*route), backend_role)


def test_both_sides_know_the_same_roles() -> None:
    assert {r.value for r in Role} == {r.value for r in backend_principal.Role}


def test_every_route_the_console_names_is_in_the_policy_table() -> None:
    named = {r for routes in ROUTES_READ_BY_PAGE.values() for r in routes}
    named |= set(PAGE_PURPOSE_ROUTE.values())
    named |= {r for routes in ROUTES_OF_ACTION.values() for r in routes}
    assert named <= set(policy.POLICY), named - set(policy.POLICY)


@pytest.mark.parametrize("role", list(Role))
def test_a_role_sees_a_page_exactly_when_the_api_lets_it_do_the_pages_work(role: Role) -> None:
    for page in PageKey:
        listed = page in roles.pages_for(role)
        reads = all(_allowed(role, route) for route in ROUTES_READ_BY_PAGE[page])
        purpose = _allowed(role, PAGE_PURPOSE_ROUTE[page])
        assert listed == (reads and purpose), (role, page, reads, purpose)


@pytest.mark.parametrize("role", list(Role))
def test_a_button_is_offered_exactly_when_the_api_would_take_it(role: Role) -> None:
    kinds = scope.ALERT_SUBJECTS[backend_principal.Role(role.value)]
    for action in Action:
        api_takes = all(_allowed(role, route) for route in ROUTES_OF_ACTION[action])
        if action in ALERT_KIND_OF_ACTION:
            api_takes = api_takes and ALERT_KIND_OF_ACTION[action] in kinds
        assert roles.may(role, action) == api_takes, (role, action)
