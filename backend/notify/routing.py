"""Which routes an alert goes to: pure functions of a route's rules and the alert."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class RouteRule:
    """A route's filters: empty collections match everything."""

    id: int
    alert_types: frozenset[str]
    min_severity: str
    areas: frozenset[str]


def severity_at_least(severity: str, minimum: str) -> bool:
    """Say whether ``severity`` is ``minimum`` or graver (an unknown severity counts as info)."""
    return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK.get(minimum, 0)


def route_matches(
    rule: RouteRule, *, alert_type: str, severity: str, areas: Collection[str]
) -> bool:
    """Say whether an alert of ``alert_type`` and ``severity`` in ``areas`` goes to ``rule``.

    ``areas`` holds the named areas the alert is in: its machine's, or for an area
    alert (a hotspot) those of the machines it lists. A route limited to areas
    takes only alerts in one of them.
    """
    if rule.alert_types and alert_type not in rule.alert_types:
        return False
    if not severity_at_least(severity, rule.min_severity):
        return False
    return not rule.areas or any(area in rule.areas for area in areas)
