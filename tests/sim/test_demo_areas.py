"""The demo city's named areas: the shipped file is what the generator draws, and fits the fleet."""

from __future__ import annotations

import json

from backend.areas.features import area_of
from simulators.fleet_plan import plan_fleet
from simulators.geography import NEIGHBOURHOODS
from simulators.neighbourhood_cells import AREAS_FILE, collection, demo_areas


def test_shipped_file_is_the_generated_one() -> None:
    assert json.loads(AREAS_FILE.read_text(encoding="utf-8")) == collection()


def test_every_neighbourhood_has_one_area_and_every_planned_machine_lies_in_its_own() -> None:
    shapes = demo_areas()
    assert sorted(s.name for s in shapes) == sorted(n.name for n in NEIGHBOURHOODS)
    for place in NEIGHBOURHOODS:
        assert area_of(shapes, place.lat, place.lon) == place.name
    for spec in plan_fleet(300, seed=7):
        assert area_of(shapes, spec.lat, spec.lon) == spec.site, spec.machine_id
