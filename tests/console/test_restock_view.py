"""Pure restock planning: targets, pick list, van totals, visit defaults."""

from __future__ import annotations

from typing import Any

from console import restock_view
from console.api_models import MachinePublic
from tests.console.fake_api import machine_json


def _machine(machine_id: str, **kwargs: Any) -> MachinePublic:
    return MachinePublic.model_validate(machine_json(machine_id, **kwargs))


def test_slots_are_loaded_to_par_never_below_what_is_there() -> None:
    machine = _machine("m-1", counts=(3, 9))  # par 8, capacity 10
    assert [restock_view.to_load(s) for s in machine.slots] == [5, 0]
    assert restock_view.visit_defaults(machine) == {1: 8, 2: 9}


def test_target_falls_back_to_capacity_then_to_the_count() -> None:
    raw = machine_json("m-1", counts=(1, 1))
    raw["slots"][0]["par"] = None
    raw["slots"][1].update(par=None, capacity=None)
    machine = MachinePublic.model_validate(raw)
    assert [restock_view.target(s) for s in machine.slots] == [10, 1]


def test_pick_list_covers_reachable_machines_worst_first_and_sums_the_van() -> None:
    machines = [
        _machine("full", counts=(8, 8)),
        _machine("low", health="low_stock", counts=(2, 8)),
        _machine("empty", health="empty", counts=(0, 0)),
        _machine("dark", health="offline", counts=(0, 0)),  # nobody can confirm its stock
    ]
    rows = restock_view.pick_rows(machines)
    assert [(r["machine"], r["slot"], r["load"]) for r in rows] == [
        ("empty", 1, 8),
        ("empty", 2, 8),
        ("low", 1, 6),
    ]
    assert restock_view.van_totals(rows) == [{"product": "naloxone-nasal-4mg", "load": 22}]
    assert not restock_view.needs_visit(machines[0])
