"""Settings of the scheduled hotspot job: environment variables with ``NX_HOTSPOT_``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HotspotSettings(BaseSettings):
    """What the scheduled scan looks at and when it raises an alert."""

    model_config = SettingsConfigDict(env_prefix="NX_HOTSPOT_", extra="ignore")

    products: list[str] | None = None
    """Product codes counted as naloxone; None: every product marked naloxone."""
    study_days: int = Field(default=56, ge=7)
    """Sliding study period ending today: the baseline each day is compared with."""
    max_radius_km: float = Field(default=3.0, gt=0)
    max_share: float = Field(default=0.5, gt=0, le=0.5)
    max_days: int = Field(default=7, ge=1)
    replicates: int = Field(default=999, ge=9)
    seed: int = 20260101
    workers: int = Field(default=2, ge=1)
    alert_recurrence_days: float = Field(default=100.0, gt=1)
    """Raise an alert when a cluster this rare by chance (1 in N days) appears."""
    keep_recurrence_days: float = Field(default=20.0, gt=1)
    """Keep an open alert while its area still has a cluster at least this rare."""
    c2_threshold: float = Field(default=3.0, gt=0)
    """EARS C2 threshold for each named area's total and the fleet-wide total."""
    surge: Literal["c2", "cusum", "both"] = "c2"
    """Count-series detector for each named area and the fleet: EARS C2, Poisson CUSUM or both."""
    cusum_shift: float = Field(default=2.0, gt=1)
    """Rate multiple the CUSUM is tuned to catch (2: a doubling)."""
    cusum_decision_limit: float = Field(default=4.0, gt=0)
    cusum_baseline_days: int = Field(default=28, ge=4)
    """Days of baseline rate before the 2-day guard band; at most study_days - 3 are used."""
    machine_history_days: int | None = Field(default=28, ge=10)
    """Per-machine EARS C2 for machines whose first dispense in the study period is at
    least this many days old (None: off; longer than study_days: no machine qualifies)."""
    machine_c2_threshold: float = Field(default=5.0, gt=0)
    """Per-machine EARS C2 threshold: higher than the areas' since every machine is tested
    each day (36 machines at 3 SD would give about one false alarm a week)."""
    machine_min_count: int = Field(default=5, ge=1)
    """Fewest dispenses at one machine on a day that can raise its own alert."""
    threshold_dispenses: int | None = Field(default=None, ge=2)
    """Fixed rule: alert at this many dispenses within threshold_radius_km in 24 h (off: None)."""
    threshold_radius_km: float = Field(default=1.6, gt=0)
    timezone: str = "UTC"
    """Time zone whose calendar days the scan counts in (the city's)."""
    clock: Literal["wall", "data"] = "wall"
    """"data": take "now" from the newest dispense (replays and accelerated demos)."""
    interval_s: float = Field(default=3600.0, gt=0)
    """How often the scheduler runs the job."""

