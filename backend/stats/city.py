"""The city's calendar for statistics: one time zone shared with the hotspot job."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from backend.config import Settings
from backend.hotspots.settings import HotspotSettings


def hotspot_settings(settings: Settings) -> HotspotSettings:
    """Return the hotspot settings, in the statistics' time zone when one is set."""
    hotspots = HotspotSettings()
    if settings.stats_timezone is not None:
        hotspots = hotspots.model_copy(update={"timezone": settings.stats_timezone})
    return hotspots


def city_zone(settings: Settings) -> ZoneInfo:
    """Return the zone whose days and weeks the statistics count in."""
    return ZoneInfo(hotspot_settings(settings).timezone)
