"""Score the backend's stock-out forecast on a simulated fleet against a naive baseline.

Demand comes from the simulator's own model (simulators/demand.py: Poisson
visitors per hour with its hour-of-day and weekday shape, each taking from a
slot chosen by popularity) for machines laid out by simulators/fleet_plan.py.
At a random moment after ``history_days`` of history each naloxone slot is
given a random stock; the demand that follows says when it really runs out.
The forecast (backend code) and the baseline (stock over the last 7 days' mean
rate) see only the history. ``drift_sd`` > 0 moves each machine's demand level
by a log-normal step every week, as real demand does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from backend.forecast.model import DEFAULT_PARAMS, epoch_hours, naive_stockout_h
from backend.forecast.outlook import SlotState, machine_outlook
from backend.forecast.params import ModelParams
from simulators.demand import DemandModel
from simulators.fleet_plan import plan_fleet

_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class EvalResult:
    """The evaluation's figures (times in hours)."""

    machines: int
    slots_scored: int
    slots_censored: int
    interval_coverage: float
    mae_model_hours: float
    mae_baseline_hours: float
    error_ratio_vs_baseline: float
    drift_sd: float
    seed: int

    def as_dict(self) -> dict[str, float | int]:
        """Return the figures as JSON-ready numbers."""
        return asdict(self)


def _demand_hours(
    rng: np.random.Generator, model: DemandModel, per_day: float, start: datetime, hours: int,
    drift_sd: float,
) -> np.ndarray:
    """Return visitor arrival times (epoch hours) over ``hours`` hours from ``start``."""
    factors = np.array([model.factor(start + timedelta(hours=h)) for h in range(hours)])
    level = np.ones(hours)
    if drift_sd > 0:
        steps = rng.normal(0.0, drift_sd, size=hours // 168 + 1)
        level = np.exp(np.cumsum(steps))[np.arange(hours) // 168]
    counts = rng.poisson(per_day / 24.0 * factors * level)
    base = epoch_hours(start)
    hour_index = np.repeat(np.arange(hours), counts)
    return np.sort(base + hour_index + rng.random(hour_index.size))


def evaluate(
    *, machines: int = 60, seed: int = 7, history_days: int = 28, future_days: int = 42,
    drift_sd: float = 0.0, params: ModelParams = DEFAULT_PARAMS,
) -> EvalResult:
    """Forecast every naloxone slot once on a simulated fleet and score it.

    The point forecast scored is the median (the time that minimises the
    expected absolute error); a forecast or baseline past the lookahead counts
    as the lookahead.
    """
    rng = np.random.default_rng(seed)
    model = DemandModel()
    cap = float(params.lookahead_hours)
    total_h = (history_days + future_days) * 24
    covered: list[bool] = []
    err_model: list[float] = []
    err_base: list[float] = []
    censored = 0
    for spec in plan_fleet(machines, seed=seed):
        arrivals = _demand_hours(rng, model, spec.per_day, _START, total_h, drift_sd)
        weights = np.array([s.popularity for s in spec.slots])
        chosen = rng.choice(len(spec.slots), size=arrivals.size, p=weights / weights.sum())
        slot_numbers = np.array([s.slot for s in spec.slots])[chosen]
        now_h = epoch_hours(_START) + history_days * 24 + float(rng.uniform(0, 168))
        now = datetime.fromtimestamp(now_h * 3600, tz=UTC)
        past = arrivals < now_h
        naloxone = [s for s in spec.slots if s.product.startswith("naloxone")]
        stock = {s.slot: int(rng.integers(1, s.capacity + 1)) for s in naloxone}
        history = [(int(n), datetime.fromtimestamp(h * 3600, tz=UTC))
                   for n, h in zip(slot_numbers[past], arrivals[past], strict=True)]
        outlook = machine_outlook(
            [SlotState(s.slot, s.product, stock[s.slot], True) for s in naloxone], history,
            now=now, since=_START, deadline_h=24.0, params=params)
        for item in outlook:
            future = arrivals[~past & (slot_numbers == item.state.slot)] - now_h
            if future.size < item.state.count:
                censored += 1
                continue
            actual = float(future[item.state.count - 1])
            f = item.forecast
            low = 0.0 if f.low_h is None else f.low_h
            high = np.inf if f.high_h is None else f.high_h
            covered.append(low <= actual <= high)
            err_model.append(abs((cap if f.median_h is None else f.median_h) - actual))
            mine = arrivals[past & (slot_numbers == item.state.slot)]
            base = naive_stockout_h(mine, stock=item.state.count, now_h=now_h)
            err_base.append(abs(min(cap, np.inf if base is None else base) - actual))
    mae_model, mae_base = float(np.mean(err_model)), float(np.mean(err_base))
    return EvalResult(
        machines=machines, slots_scored=len(covered), slots_censored=censored,
        interval_coverage=round(float(np.mean(covered)), 4),
        mae_model_hours=round(mae_model, 3), mae_baseline_hours=round(mae_base, 3),
        error_ratio_vs_baseline=round(mae_model / mae_base, 4),
        drift_sd=drift_sd, seed=seed,
    )
