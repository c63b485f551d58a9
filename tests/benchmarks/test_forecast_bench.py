"""Forecast calibration and error against the naive baseline on simulated fleets.

Writes bench-results/forecast.json (the figures in docs/restock.md). The top-level
fields are from the simulator's demand model as it is; ``drifting`` repeats the
run with each machine's demand level moving every week.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from scipy.stats import binomtest

from simulators.forecast_eval import EvalResult, evaluate

MACHINES = 1000
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "forecast.json"


def _figures(result: EvalResult) -> dict[str, object]:
    hits = round(result.interval_coverage * result.slots_scored)
    ci = binomtest(hits, result.slots_scored).proportion_ci(0.95, method="wilson")
    return {**result.as_dict(), "interval_coverage_ci95": [round(ci.low, 4), round(ci.high, 4)],
            "coverage_in_target": 0.75 <= result.interval_coverage <= 0.85,
            "error_ratio_in_target": result.error_ratio_vs_baseline <= 0.8}


def test_forecast_calibration_and_error() -> None:
    started = time.perf_counter()
    stationary = evaluate(machines=MACHINES, seed=11)
    drifting = evaluate(machines=MACHINES, seed=12, drift_sd=0.3)
    figures = {**_figures(stationary), "drifting": _figures(drifting),
               "seconds": round(time.perf_counter() - started, 2),
               "targets": {"interval_coverage": [0.75, 0.85], "error_ratio_vs_baseline": 0.8}}
    print("\nforecast evaluation:", json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    # Nearly every slot's stock-out must fall inside the simulated future to be scored.
    assert stationary.slots_censored <= 0.02 * (stationary.slots_scored + 1)
