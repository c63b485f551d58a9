"""``nx-sim restock-eval``: play the simulated city under restock policies and compare them.

The city (``simulators/restock_city.py``) runs in simulated time, hour by
hour of demand, as fast as the computer goes; each policy
(``simulators/restock_policies.py``) plays the same draw of the city. The
figures: hours that naloxone slots stood empty, visits, kilometres driven, and
expired or heat-exposed doses dispensed (docs/restock.md, "Evaluation").
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from simulators.restock_city import SHIFT_START_HOUR, START, City, CityDraw, Figures, draw_city
from simulators.restock_policies import POLICIES, make_policy

DEFAULT_OUT = Path("bench-results/restock_eval.json")


def run_policy(name: str, draw: CityDraw, *, vans: int) -> Figures:
    """Play the whole evaluation under one policy; return its figures."""
    city = City(draw)
    policy = make_policy(name, city, vans=vans)
    pending: list[tuple[str, Any]] = []
    cursor = START
    for day in range(draw.days):
        shift = START + timedelta(days=day, hours=SHIFT_START_HOUR)
        city.advance(cursor, shift, pending, policy.removal)
        cursor = shift
        # Every stop of a shift lies before the next shift: played by the next advance.
        pending = policy.day(city, shift)
    end = START + timedelta(days=draw.days)
    city.advance(cursor, end, pending, policy.removal)
    city.close(end)
    return city.figures


def _rounded(figures: Figures) -> dict[str, float | int]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(figures).items()}


def evaluate(
    policies: Sequence[str], *, machines: int, days: int, vans: int, seeds: Sequence[int],
    per_day: float = 6.0,
) -> dict[str, Any]:
    """Run every policy on every seed's city; return per-policy totals and per-seed figures."""
    for name in policies:
        if name not in POLICIES:
            raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")
    started = time.perf_counter()
    runs: dict[str, list[dict[str, float | int]]] = {name: [] for name in policies}
    for seed in seeds:
        draw = draw_city(machines=machines, days=days, seed=seed, per_day=per_day)
        for name in policies:
            runs[name].append({"seed": seed, **_rounded(run_policy(name, draw, vans=vans))})
    totals = {name: {key: round(sum(float(r[key]) for r in rows), 3)
                     for key in rows[0] if key != "seed"}
              for name, rows in runs.items()}
    out: dict[str, Any] = {
        "machines": machines, "days": days, "vans": vans, "seeds": list(seeds),
        "per_day": per_day,
        "policies": totals, "per_seed": runs,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if "plan" in totals and "weekly" in totals:
        plan, weekly = totals["plan"], totals["weekly"]
        out["empty_hours_ratio"] = _ratio(plan["naloxone_empty_slot_hours"],
                                          weekly["naloxone_empty_slot_hours"])
        out["km_ratio"] = _ratio(plan["km"], weekly["km"])
    return out


def _ratio(a: float, b: float) -> float | None:
    return None if b == 0 else round(a / b, 4)


def write(result: dict[str, Any], path: Path) -> None:
    """Write the figures as JSON (the directory is made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def summary(result: dict[str, Any]) -> str:
    """Return the figures as a small table for a terminal."""
    lines = [f"{result['machines']} machines ({result['per_day']} visitors a day each), "
             f"{result['days']} days, {result['vans']} van(s), seeds {result['seeds']}",
             f"{'policy':12}{'empty h':>10}{'visits':>8}{'km':>9}{'expired':>9}{'heat':>6}"]
    for name, t in result["policies"].items():
        lines.append(f"{name:12}{t['naloxone_empty_slot_hours']:>10.1f}{int(t['visits']):>8}"
                     f"{t['km']:>9.1f}{int(t['expired_doses_dispensed']):>9}"
                     f"{int(t['heat_exposed_doses_dispensed']):>6}")
    if "empty_hours_ratio" in result:
        lines.append(f"plan / weekly: empty hours {result['empty_hours_ratio']}, "
                     f"km {result['km_ratio']}")
    return "\n".join(lines)
