"""Evaluation: power with planted surges and the false-alarm share, with Wilson intervals.

Writes bench-results/hotspot_evaluation.json (the figures in docs/hotspots.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from backend.hotspots.evaluation import Scenario, evaluate

RUNS = 500
REPLICATES = 999
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "hotspot_evaluation.json"


def test_hotspot_power_and_false_alarms() -> None:
    figures: dict[str, object] = {"scenario": asdict(Scenario())}
    null = evaluate(Scenario(), runs=RUNS, replicates=REPLICATES, seed=1)
    figures["null"] = asdict(null)
    for rr in (2.0, 3.0, 4.0, 6.0):
        figures[f"power_rr_{rr:g}"] = asdict(evaluate(
            Scenario(relative_risk=rr), runs=RUNS, replicates=REPLICATES, seed=2))
    print("\nhotspot evaluation:", json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    assert null.ci_low <= 0.05 <= null.ci_high
