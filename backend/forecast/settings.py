"""Forecast settings: environment variables with the ``NX_FORECAST_`` prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.forecast.alerting import Thresholds
from backend.forecast.params import ModelParams, Prior


class ForecastSettings(BaseSettings):
    """The demand model's knobs and the predicted-stockout alert's rule."""

    model_config = SettingsConfigDict(env_prefix="NX_FORECAST_", extra="ignore")

    # The alert asks: will the slot run out within this many hours (or before the
    # next planned visit, when the planner gives one)?
    horizon_h: float = Field(default=24.0, gt=0, le=24 * 28)
    # Open at this chance of running out, resolve once it is below resolve_below.
    open_probability: float = Field(default=0.5, gt=0, le=1)
    resolve_probability: float = Field(default=0.3, gt=0, le=1)
    history_days: float = Field(default=28.0, gt=0, le=365)
    half_life_days: float = Field(default=7.0, gt=0, le=365)
    lookahead_days: int = Field(default=28, ge=1, le=90)
    prior_per_day: float = Field(default=2.0, gt=0)
    prior_days: float = Field(default=1.0, gt=0)
    # "wall": now is the clock's time; "data": now is the newest dispense's device
    # time (the demo's accelerated fleet stamps simulated time).
    clock: Literal["wall", "data"] = "wall"
    # How often the periodic job runs (seconds).
    interval_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _hysteresis(self) -> ForecastSettings:
        if self.resolve_probability > self.open_probability:
            raise ValueError("NX_FORECAST_RESOLVE_PROBABILITY must not exceed "
                             "NX_FORECAST_OPEN_PROBABILITY")
        return self

    def params(self) -> ModelParams:
        """Return the model parameters these settings describe."""
        return ModelParams(
            history_hours=self.history_days * 24,
            half_life_hours=self.half_life_days * 24,
            lookahead_hours=self.lookahead_days * 24,
            prior=Prior(rate_per_hour=self.prior_per_day / 24, hours=self.prior_days * 24),
        )

    def thresholds(self) -> Thresholds:
        """Return the alert's two thresholds."""
        return Thresholds(open_at=self.open_probability, resolve_below=self.resolve_probability)
