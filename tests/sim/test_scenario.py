"""Scenario files: parsing, validation, demand multipliers and event transitions."""

from __future__ import annotations

import pytest

from simulators.fleet_plan import plan_fleet
from simulators.scenario import (
    GoDark,
    HeatWave,
    ScenarioError,
    Surge,
    available,
    load_scenario,
    parse_scenario,
)

FLEET = plan_fleet(24, seed=1)
KENSINGTON = next(s for s in FLEET if s.site == "Kensington")
CENTER_CITY = next(s for s in FLEET if s.site == "Center City")

SURGE = """
name = "t"
[[event]]
kind = "surge"
start_h = 2
duration_h = 10
multiplier = 4
sites = ["Kensington"]

[[event]]
kind = "surge"
start_h = 5
duration_h = 2
multiplier = 2
"""


def test_every_shipped_scenario_loads_and_fits_the_default_fleet() -> None:
    names = available()
    assert {"demo", "kensington-surge", "citywide-surge", "heat-wave", "machines-dark",
            "vandalism"} <= set(names)
    for name in names:
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.events
        scenario.check_targets(FLEET)


def test_surges_multiply_only_where_and_when_they_apply() -> None:
    scenario = parse_scenario(SURGE)
    assert scenario.multiplier(KENSINGTON, 1.9) == 1.0
    assert scenario.multiplier(KENSINGTON, 2.0) == 4.0
    assert scenario.multiplier(KENSINGTON, 6.0) == 8.0  # inside both surges
    assert scenario.multiplier(CENTER_CITY, 6.0) == 2.0  # the city-wide one only
    assert scenario.multiplier(KENSINGTON, 12.0) == 1.0  # the end is exclusive


def test_transitions_fall_in_half_open_steps_in_time_order() -> None:
    scenario = parse_scenario(SURGE)
    seen = [
        (t.at_h, t.begins)
        for h in range(0, 14)
        for t in scenario.transitions(float(h), float(h + 1))
    ]
    assert seen == [(2.0, True), (5.0, True), (7.0, False), (12.0, False)]
    both = scenario.transitions(0.0, 20.0)
    assert [(t.at_h, t.begins) for t in both] == seen


def test_event_kinds_parse_into_their_models() -> None:
    scenario = load_scenario("demo")
    kinds = {type(e) for e in scenario.events}
    assert {Surge, GoDark, HeatWave} <= kinds
    dark = next(e for e in scenario.events if isinstance(e, GoDark))
    assert dark.applies_to(next(s for s in FLEET if s.machine_id == dark.machines[0]))
    assert not dark.applies_to(KENSINGTON)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name = ", "not valid TOML"),
        ('name = "x"\n[[event]]\nkind = "flood"\nstart_h = 1\nduration_h = 1', "event.0"),
        ('name = "x"\n[[event]]\nkind = "surge"\nstart_h = 1\nduration_h = 0\nmultiplier = 2',
         "duration_h"),
        ('name = "x"\n[[event]]\nkind = "heat"\nstart_h = -1\nduration_h = 1\ncelsius = 30',
         "start_h"),
        ('name = "x"\nbogus = 1', "bogus"),
    ],
)
def test_bad_scenarios_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ScenarioError, match=problem):
        parse_scenario(text)


def test_unknown_targets_and_missing_files_are_named() -> None:
    scenario = parse_scenario(
        'name = "x"\n[[event]]\nkind = "dark"\nstart_h = 1\nduration_h = 1\n'
        'machines = ["phl-999"]\nsites = ["Atlantis"]'
    )
    with pytest.raises(ScenarioError, match="Atlantis, phl-999"):
        scenario.check_targets(FLEET)
    with pytest.raises(ScenarioError, match=r"shipped scenarios: .*demo"):
        load_scenario("no-such-scenario")
