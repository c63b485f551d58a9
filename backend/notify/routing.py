"""Which routes an alert goes to: pure functions of a route's rules and the alert."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from backend.notify.geo import Polygon, contains

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class RouteRule:
    """A route's filters: empty collections match everything."""

    id: int
    alert_types: frozenset[str]
    min_severity: str
    areas: frozenset[str]
    polygons: tuple[Polygon, ...] = ()
    tags: frozenset[str] = frozenset()


def severity_at_least(severity: str, minimum: str) -> bool:
    """Say whether ``severity`` is ``minimum`` or graver (an unknown severity counts as info)."""
    return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK.get(minimum, 0)


def route_matches(
    rule: RouteRule, *, alert_type: str, severity: str, areas: Collection[str],
    points: Collection[tuple[float, float]] = (), tags: Collection[str] = (),
) -> bool:
    """Say whether an alert of ``alert_type`` and ``severity`` in ``areas`` goes to ``rule``.

    ``areas`` holds the named areas the alert is in and ``points`` its (lon, lat)
    places: its machine's, or for an area alert (a hotspot) its centre and the
    machines it lists. A route limited to named areas and/or a polygon takes only
    alerts in one of those areas or with a place inside the polygon. A route
    limited to machine tags takes only alerts whose machines (``tags``: the
    union of their tags) carry one of them, whatever the areas.
    """
    if rule.alert_types and alert_type not in rule.alert_types:
        return False
    if not severity_at_least(severity, rule.min_severity):
        return False
    if rule.tags and rule.tags.isdisjoint(tags):
        return False
    if not rule.areas and not rule.polygons:
        return True
    if any(area in rule.areas for area in areas):
        return True
    return any(contains(rule.polygons, lon, lat) for lon, lat in points)
