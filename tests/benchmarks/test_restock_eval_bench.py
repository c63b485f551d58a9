"""The restock policies on the simulated city: plan against a weekly round, same seeds, one run.

Writes bench-results/restock_eval.json (the figures in docs/restock.md): the
issue's city (60 machines, 28 days, one van, the demo's demand of 6 visitors a
machine a day) at the top level, and the same city with two vans under
``two_vans``. Ratios are plan over weekly; targets: empty hours at most 0.5,
km at most 1.0, no expired dose dispensed under the plan. Figures are printed
and written whatever they are; the run fails only if the evaluation breaks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulators.restock_eval import evaluate, summary

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "restock_eval.json"
SEEDS = (1, 2)
POLICIES = ("plan", "weekly", "when-empty")


def _targets(result: dict[str, Any]) -> dict[str, bool]:
    return {"empty_hours_ratio": result["empty_hours_ratio"] <= 0.5,
            "km_ratio": result["km_ratio"] <= 1.0,
            "no_expired_dose_under_plan":
                result["policies"]["plan"]["expired_doses_dispensed"] == 0}


def test_plan_against_the_weekly_round() -> None:
    one = evaluate(POLICIES, machines=60, days=28, vans=1, seeds=SEEDS)
    two = evaluate(POLICIES, machines=60, days=28, vans=2, seeds=SEEDS)
    figures = {**one, "targets_met": _targets(one),
               "two_vans": {**two, "targets_met": _targets(two)}}
    print("\nrestock evaluation:\n" + summary(one) + "\n" + summary(two))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    for result in (one, two):
        assert result["policies"]["weekly"]["visits"] > 0
        assert result["policies"]["plan"]["visits"] > 0
