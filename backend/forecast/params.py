"""The forecast model's parameters, apart from the model so settings load without SciPy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prior:
    """The Gamma prior of a slot's base rate, as a rate and how many hours it is worth."""

    rate_per_hour: float = 1.0 / 12
    hours: float = 24.0

    def __post_init__(self) -> None:
        if self.rate_per_hour <= 0 or self.hours <= 0:
            raise ValueError("the prior needs a positive rate and a positive weight in hours")


@dataclass(frozen=True)
class ModelParams:
    """How much history the model reads, how fast it forgets, how far it looks ahead."""

    history_hours: float = 28 * 24.0
    half_life_hours: float = 7 * 24.0
    lookahead_hours: int = 28 * 24
    prior: Prior = Prior()
    # Pseudo-events that pull each hour-of-day and weekday factor towards 1.
    hour_pseudo: float = 4.0
    weekday_pseudo: float = 8.0

    def __post_init__(self) -> None:
        if self.history_hours <= 0 or self.half_life_hours <= 0 or self.lookahead_hours < 1:
            raise ValueError("history, half-life and lookahead must be positive")
        if self.hour_pseudo <= 0 or self.weekday_pseudo <= 0:
            raise ValueError("the shape's pseudo-counts must be positive")
