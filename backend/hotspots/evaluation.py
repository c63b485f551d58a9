"""Measure the scan on synthetic fleets: power with a planted surge, false alarms without.

Run as ``python -m backend.hotspots.evaluation --runs 500`` for the full
figures (printed, and written as JSON with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from backend.hotspots.simulate import Surge, draw_counts, make_fleet, surge_members
from backend.hotspots.stpscan import ScanSettings, scan


@dataclass(frozen=True)
class Scenario:
    """A family of synthetic fleets, with or without a planted surge."""

    machines: int = 150
    days: int = 56
    extent_km: float = 15.0
    mean_daily: float = 0.5
    surge_radius_km: float = 1.0
    surge_days: int = 3
    relative_risk: float | None = None
    """None: no surge (the null hypothesis holds)."""


@dataclass(frozen=True)
class Evaluation:
    """How often the scan flagged a cluster at `alpha`, with a 95% confidence interval."""

    runs: int
    alpha: float
    flagged: int
    """Runs whose most likely cluster had p <= alpha."""
    found: int
    """Flagged runs whose cluster shares a machine with the planted surge."""
    share: float
    ci_low: float
    ci_high: float
    ci_method: str
    replicates: int


def evaluate(
    scenario: Scenario,
    *,
    runs: int,
    replicates: int,
    seed: int,
    alpha: float = 0.05,
    settings: ScanSettings | None = None,
) -> Evaluation:
    """Run the scan on `runs` fresh fleets and count the significant most likely clusters.

    With a surge, a run counts when the significant cluster overlaps the planted
    machines (power); without one, any significant cluster is a false alarm.
    """
    base = settings or ScanSettings(max_radius_km=3.0, max_days=7)
    rng = np.random.default_rng(seed)
    flagged = found = 0
    for run in range(runs):
        fleet = make_fleet(
            rng,
            machines=scenario.machines,
            days=scenario.days,
            extent_km=scenario.extent_km,
            mean_daily=scenario.mean_daily,
        )
        surge = None
        if scenario.relative_risk is not None:
            surge = Surge(
                centre=int(rng.integers(scenario.machines)),
                radius_km=scenario.surge_radius_km,
                days=scenario.surge_days,
                relative_risk=scenario.relative_risk,
            )
        counts = draw_counts(rng, fleet, surge)
        result = scan(
            counts,
            fleet.points,
            ScanSettings(
                max_radius_km=base.max_radius_km,
                max_share=base.max_share,
                max_days=base.max_days,
                prospective=base.prospective,
                min_cases=base.min_cases,
                replicates=replicates,
                seed=seed * 100_003 + run,
                max_clusters=1,
            ),
        )
        if not result.clusters or (result.clusters[0].p_value or 1.0) > alpha:
            continue
        flagged += 1
        if surge is None:
            continue
        planted = set(surge_members(fleet, surge).tolist())
        if planted.intersection(result.clusters[0].locations):
            found += 1
    hits = found if scenario.relative_risk is not None else flagged
    interval = binomtest(hits, runs).proportion_ci(confidence_level=0.95, method="wilson")
    return Evaluation(
        runs=runs,
        alpha=alpha,
        flagged=flagged,
        found=found,
        share=hits / runs,
        ci_low=float(interval.low),
        ci_high=float(interval.high),
        ci_method="wilson",
        replicates=replicates,
    )


def main(argv: list[str] | None = None) -> int:
    """Print (and optionally save) power and false-alarm figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--replicates", type=int, default=199)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--relative-risk", type=float, action="append", default=None)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    figures: dict[str, object] = {"scenario": asdict(Scenario())}
    null = evaluate(Scenario(), runs=args.runs, replicates=args.replicates, seed=args.seed)
    figures["null"] = asdict(null)
    for rr in args.relative_risk or [2.0, 3.0, 4.0]:
        power = evaluate(
            Scenario(relative_risk=rr),
            runs=args.runs,
            replicates=args.replicates,
            seed=args.seed + 1,
        )
        figures[f"power_rr_{rr:g}"] = asdict(power)
    text = json.dumps(figures, indent=2)
    sys.stdout.write(text + "\n")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
