"""Response bodies of a machine's temperature and stock history."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class TemperaturePointPublic(BaseModel):
    """Mean, lowest and highest reading of one bucket (one reading when they are few)."""

    at: dt.datetime
    celsius: float
    low: float
    high: float
    readings: int


class TemperatureHistory(BaseModel):
    """A machine's temperature over a range, with naloxone's labelled storage range."""

    model_config = ConfigDict(populate_by_name=True)

    machine_id: str
    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    safe_min_c: float
    safe_max_c: float
    data: list[TemperaturePointPublic]
    count: int


class StockPointPublic(BaseModel):
    """A slot's count from ``at`` on."""

    at: dt.datetime
    slot: int
    count: int


class StockHistory(BaseModel):
    """Each slot's count over a range, as steps."""

    model_config = ConfigDict(populate_by_name=True)

    machine_id: str
    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    data: list[StockPointPublic]
    count: int
