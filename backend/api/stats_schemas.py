"""Response bodies of the dispense statistics and export routes."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class DispenseSeries(BaseModel):
    """Counts of one area, product or machine per bucket; null where suppressed."""

    key: str
    counts: list[int | None]
    small: list[bool] = Field(description="True where the count is from 1 to k-1")
    total: int | None


class DispenseStats(BaseModel):
    """Dispenses per bucket and group, with totals (suppressed for all but admin)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: dt.date = Field(alias="from")
    to: dt.date
    bucket: str
    group: str
    timezone: str
    suppression_k: int | None = Field(
        description="Counts from 1 to k-1 and the cells that would reveal them are null; "
                    "null when nothing was suppressed (admin)")
    buckets: list[dt.datetime]
    series: list[DispenseSeries]
    totals: list[int | None]
    total: int | None


class StatsToday(BaseModel):
    """The city's day that periods ending "today" end on (GET /api/v1/stats/today)."""

    today: dt.date
    timezone: str
    clock: str = Field(description='"wall", or "data": the day of the newest dispense '
                                   "(replays and the accelerated demo), as the hotspot scan")
