"""The restock evaluation on a small fleet: the plan beats the weekly round, no expired dose."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import backend.forecast.outlook
import backend.restock.routing
import simulators.restock_policies as policies
from simulators.restock_city import START, draw_city
from simulators.restock_eval import evaluate, run_policy


def test_the_evaluation_plays_the_backends_own_forecast_and_planner() -> None:
    assert policies.solve is backend.restock.routing.solve
    assert policies.machine_outlook is backend.forecast.outlook.machine_outlook


def test_plan_beats_the_weekly_round_on_a_small_fleet_and_dispenses_no_expired_dose() -> None:
    result = evaluate(["plan", "weekly"], machines=8, days=7, vans=1, seeds=[3])
    plan, weekly = result["policies"]["plan"], result["policies"]["weekly"]
    # A weekly round comes once to each machine; its naloxone runs out between visits.
    assert weekly["visits"] == 8
    assert weekly["naloxone_empty_slot_hours"] > 0
    assert plan["naloxone_empty_slot_hours"] < weekly["naloxone_empty_slot_hours"]
    assert result["empty_hours_ratio"] < 1
    assert plan["expired_doses_dispensed"] == 0
    assert plan["visits"] > 0
    assert plan["km"] > 0
    assert plan["critical_left_out"] == 0


def test_lots_expiring_during_the_week_are_dispensed_by_the_round_not_by_the_plan() -> None:
    draw = draw_city(machines=4, days=5, seed=5)
    # Every lot in the machines expires on day 2: the weekly round, which only sees
    # expired boxes when it comes, dispenses them; the plan swaps them first.
    soon = {key: (START + timedelta(days=2)).date() for key in draw.initial_expiry}
    draw = replace(draw, initial_expiry=soon)
    weekly = run_policy("weekly", draw, vans=1)
    plan = run_policy("plan", draw, vans=1)
    assert weekly.expired_doses_dispensed > 0
    assert plan.expired_doses_dispensed == 0
    assert plan.doses_removed > 0
