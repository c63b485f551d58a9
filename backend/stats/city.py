"""The city's calendar for statistics: one time zone shared with the hotspot job."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlmodel import Session

from backend.config import Settings
from backend.hotspots.settings import HotspotSettings
from backend.models.types import utcnow


def hotspot_settings(settings: Settings) -> HotspotSettings:
    """Return the hotspot settings, in the statistics' time zone when one is set."""
    hotspots = HotspotSettings()
    if settings.stats_timezone is not None:
        hotspots = hotspots.model_copy(update={"timezone": settings.stats_timezone})
    return hotspots


def city_zone(settings: Settings) -> ZoneInfo:
    """Return the zone whose days and weeks the statistics count in."""
    return ZoneInfo(hotspot_settings(settings).timezone)


def stats_today(session: Session, settings: Settings) -> dt.date:
    """Return the city's day that periods ending "today" end on, by the hotspot job's clock.

    With ``NX_HOTSPOT_CLOCK=data`` (replays, the accelerated demo) that is the day of
    the newest dispense, as the scan counts it; otherwise the wall clock's day.
    """
    from backend.hotspots.store import newest_dispense

    hotspots = hotspot_settings(settings)
    now = utcnow()
    if hotspots.clock == "data":
        now = newest_dispense(session) or now
    return now.astimezone(ZoneInfo(hotspots.timezone)).date()
