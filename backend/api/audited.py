"""What each write route records in the audit trail (docs/security.md, "Audit trail").

A write route missing here fails tests/backend/test_audit_coverage.py: whoever
adds one must decide what it records (and record it in the transaction).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

AUDITED_WRITES: Final[Mapping[tuple[str, str], tuple[str, ...]]] = {
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): ("alert.acknowledge",),
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): ("alert.resolve",),
    ("POST", "/api/v1/machines/{machine_id}/restock-visits"): ("restock_visit.record",),
    ("PATCH", "/api/v1/machines/{machine_id}"): ("machine.update",),
    ("PATCH", "/api/v1/machines/{machine_id}/public-listing"): ("machine.public_listing",),
    ("PUT", "/api/v1/machines/{machine_id}/tags"): ("machine.tags",),
    ("POST", "/api/v1/machines/{machine_id}/commands"): ("command.send",),
    ("POST", "/api/v1/visits"): ("visit.record",),
    ("POST", "/api/v1/restock/plans"): ("restock_plan.issue",),
    ("POST", "/api/v1/tokens"): ("token.create",),
    ("POST", "/api/v1/tokens/{name}/revoke"): ("token.revoke",),
    ("POST", "/api/v1/devices"): ("machine.register", "device.add"),
    ("POST", "/api/v1/devices/{machine_id}/rotate"): ("device.rotate",),
    ("POST", "/api/v1/devices/{machine_id}/revoke"): ("machine.deactivate", "device.revoke"),
    ("POST", "/api/v1/devices/{machine_id}/kick"): ("device.kick",),
    ("POST", "/api/v1/notification-routes"): ("notification_route.create",),
    ("PATCH", "/api/v1/notification-routes/{route_id}"): ("notification_route.update",),
    ("DELETE", "/api/v1/notification-routes/{route_id}"): ("notification_route.delete",),
    ("POST", "/api/v1/notification-routes/{route_id}/test"): ("notification_route.test",),
}
