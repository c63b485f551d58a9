"""The one table of who may call which route; ``authorize`` (backend/api/security.py) enforces it.

Keys are (method, path template exactly as in the OpenAPI schema). A route
missing here is refused to everyone (403) and fails tests/backend/test_route_matrix.py,
so every new route needs an entry. Admin may call every non-public route.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final

from backend.auth.principal import Role


class Access(Enum):
    """A route anyone may call, without a credential."""

    PUBLIC = "public"


PUBLIC: Final = Access.PUBLIC
Allowed = frozenset[Role] | Access

ADMIN: Final = frozenset({Role.ADMIN})
ANY_ROLE: Final = frozenset(Role)
FLEET_READ: Final = frozenset({Role.ADMIN, Role.OUTREACH, Role.HEALTH})
FLEET_WRITE: Final = frozenset({Role.ADMIN, Role.OUTREACH})
# Which alerts each of these sees and acts on is backend/auth/scope.py's ALERT_SUBJECTS.
ALERTS: Final = frozenset({Role.ADMIN, Role.OUTREACH, Role.HEALTH})
HOTSPOTS: Final = frozenset({Role.ADMIN, Role.HEALTH})
PROVISION: Final = frozenset({Role.ADMIN, Role.PROVISIONING})

POLICY: Final[Mapping[tuple[str, str], Allowed]] = {
    ("GET", "/healthz"): PUBLIC,
    # The public locator feed: no counts, no events, no private ids (docs/security.md).
    ("GET", "/public/v1/machines"): PUBLIC,
    ("GET", "/public/v1/machines.geojson"): PUBLIC,
    # Scraped by Prometheus with a token (authorization.credentials in scrape_config).
    ("GET", "/metrics"): ADMIN,
    ("GET", "/api/v1/auth/me"): ANY_ROLE,
    ("GET", "/api/v1/tokens"): ADMIN,
    ("POST", "/api/v1/tokens"): ADMIN,
    ("POST", "/api/v1/tokens/{name}/revoke"): ADMIN,
    ("GET", "/api/v1/machines"): FLEET_READ,
    ("GET", "/api/v1/machines/{machine_id}"): FLEET_READ,
    ("PATCH", "/api/v1/machines/{machine_id}"): ADMIN,
    ("POST", "/api/v1/machines/{machine_id}/restock-visits"): FLEET_WRITE,
    ("GET", "/api/v1/machines/{machine_id}/forecast"): FLEET_READ,
    ("PATCH", "/api/v1/machines/{machine_id}/public-listing"): ADMIN,
    ("PUT", "/api/v1/machines/{machine_id}/tags"): ADMIN,
    # The restock plan is outreach work: health officials have no use for van routes.
    ("GET", "/api/v1/restock/plan"): FLEET_WRITE,
    # Issuing a plan schedules visits (the forecast's deadlines): the outreach lead's call.
    ("POST", "/api/v1/restock/plans"): FLEET_WRITE,
    ("GET", "/api/v1/restock/plans"): FLEET_WRITE,
    ("GET", "/api/v1/restock/plans/{plan_id}"): FLEET_WRITE,
    ("POST", "/api/v1/machines/{machine_id}/commands"): ADMIN,
    ("GET", "/api/v1/machines/{machine_id}/commands"): ADMIN,
    ("GET", "/api/v1/machines/{machine_id}/commands/{command_id}"): ADMIN,
    # Lots and discrepancies are read by whoever reads machines (health: which lots
    # were heat-exposed); visits are recorded by the outreach team.
    ("GET", "/api/v1/machines/{machine_id}/lots"): FLEET_READ,
    ("GET", "/api/v1/machines/{machine_id}/discrepancies"): FLEET_READ,
    # Temperature and stock over time: the machine detail page of every fleet reader.
    ("GET", "/api/v1/machines/{machine_id}/temperatures"): FLEET_READ,
    ("GET", "/api/v1/machines/{machine_id}/stock-history"): FLEET_READ,
    ("POST", "/api/v1/visits"): FLEET_WRITE,
    ("GET", "/api/v1/alerts"): ALERTS,
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): ALERTS,
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): ALERTS,
    ("GET", "/api/v1/hotspots"): HOTSPOTS,
    # Outlines and names only, for maps drawn without basemap tiles: whoever reads the fleet.
    ("GET", "/api/v1/areas"): FLEET_READ,
    ("GET", "/api/v1/hotspots/{alert_id}/series"): HOTSPOTS,
    # Dispense counts are the overdose proxy: health's, not outreach's (docs/hotspots.md).
    ("GET", "/api/v1/stats/dispenses"): HOTSPOTS,
    # The day statistics end on: under the data clock, the newest dispense's day.
    ("GET", "/api/v1/stats/today"): HOTSPOTS,
    ("GET", "/api/v1/exports/dispenses.csv"): HOTSPOTS,
    ("GET", "/api/v1/exports/dispenses.geojson"): HOTSPOTS,
    ("GET", "/api/v1/exports/satscan.cas"): HOTSPOTS,
    ("GET", "/api/v1/exports/satscan.geo"): HOTSPOTS,
    ("GET", "/api/v1/audit"): ADMIN,
    ("GET", "/api/v1/notification-routes"): ADMIN,
    ("POST", "/api/v1/notification-routes"): ADMIN,
    ("GET", "/api/v1/notification-routes/{route_id}"): ADMIN,
    ("PATCH", "/api/v1/notification-routes/{route_id}"): ADMIN,
    ("DELETE", "/api/v1/notification-routes/{route_id}"): ADMIN,
    ("POST", "/api/v1/notification-routes/{route_id}/test"): ADMIN,
    ("GET", "/api/v1/notifications"): ADMIN,
    ("POST", "/api/v1/devices"): PROVISION,
    ("POST", "/api/v1/devices/{machine_id}/rotate"): ADMIN,
    ("POST", "/api/v1/devices/{machine_id}/revoke"): PROVISION,
    ("POST", "/api/v1/devices/{machine_id}/kick"): ADMIN,
}


def access_for(method: str, path: str | None) -> Allowed | None:
    """Return who may call a route, or None when the table has no entry for it."""
    if path is None:
        return None
    return POLICY.get((method.upper(), path))


def allows(access: Allowed | None, role: Role) -> bool:
    """Say whether ``role`` may call a route with ``access``."""
    if access is None:
        return False
    return access is PUBLIC or role in access
