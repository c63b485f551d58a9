"""Response body of a machine's stock-out forecast."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SlotForecastPublic(BaseModel):
    slot: int
    product: str | None
    naloxone: bool
    count: int
    rate_per_day: float = Field(description="Expected dispenses per average day (posterior mean)")
    stockout_at: datetime | None = Field(
        description="Median stock-out time: as likely earlier as later (null: after the lookahead)")
    stockout_mean_at: datetime | None = Field(
        description="Expected (mean) stock-out time (null: the lookahead holds < 99% of it)")
    interval_low_at: datetime | None = Field(
        description="80% interval start: a 10% chance it runs out before this")
    interval_high_at: datetime | None = Field(
        description="80% interval end: a 10% chance it lasts longer (null: after the lookahead)")
    probability_within_horizon: float = Field(
        ge=0, le=1, description="Chance the slot runs out before generated_at + horizon_hours")


class MachineForecast(BaseModel):
    machine_id: str
    generated_at: datetime
    horizon_hours: float
    lookahead_hours: float
    slots: list[SlotForecastPublic]
