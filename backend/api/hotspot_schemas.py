"""Response body of a hotspot's daily series (``GET /api/v1/hotspots/{alert_id}/series``)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class HotspotSeries(BaseModel):
    """A cluster's daily dispenses against its expected level over the study period."""

    alert_id: int
    detector: str
    timezone: str
    days: list[dt.date]
    observed: list[int | None] = Field(
        description="Dispenses per day at the cluster's machines; null where suppressed")
    small: list[bool] = Field(description="True where the count is from 1 to k-1")
    expected: list[float] = Field(
        description="Expected per day: the scan's N_A x N_d / N, or the usual level before "
                    "the window for the surge detectors")
    total: int | None
    window_start: dt.date
    window_end: dt.date
    suppression_k: int | None = Field(description="null when nothing was suppressed (admin)")
    explanation: str = Field(description="How often chance alone would make such a cluster")
