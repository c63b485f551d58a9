"""Area outlines, name labels and the dispense heat, from the API's GeoJSON (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from console import area_view, fleet_view
from console.api_models import AreaCollection
from tests.console.fake_api import area_json, dispense_areas_json


def _collection(body: dict[str, Any]) -> AreaCollection:
    return AreaCollection.model_validate(body)


def test_outlines_cover_every_polygon_and_names_sit_in_the_largest() -> None:
    big = area_json("Big", 40.0, -75.0, half=0.05)["geometry"]["coordinates"]
    small = area_json("Big", 39.0, -74.0, half=0.01)["geometry"]["coordinates"]
    multi = {"type": "Feature", "properties": {"name": "Islands"},
             "geometry": {"type": "MultiPolygon", "coordinates": [small, big]}}
    nowhere = {"type": "Feature", "properties": {"name": "No outline"}, "geometry": None}
    outlines, names = area_view.area_rows(
        _collection({"type": "FeatureCollection", "features": [multi, nowhere]}))
    assert [row["name"] for row in outlines] == ["Islands", "Islands"]
    assert len(outlines[1]["path"]) == 5
    assert names == [{"name": "Islands", "lon": pytest.approx(-75.0),
                      "lat": pytest.approx(40.0)}]


def test_heat_shades_published_totals_and_never_turns_a_suppressed_one_into_a_number() -> None:
    areas = [area_json(name, 40.0, -75.0 + i) for i, name in enumerate("ABCDE")]
    body = dispense_areas_json(areas, {"A": 100, "B": 50, "C": "<5", "D": "suppressed", "E": 0})
    collection = _collection(body)
    assert collection.suppression_k == 5
    rows = {row["name"]: row for row in area_view.heat_rows(collection)}
    assert rows["A"]["colour"] == list(area_view.HEAT_CLASSES[-1])
    assert rows["B"]["colour"] == list(area_view.HEAT_CLASSES[2])
    assert rows["C"]["colour"] == list(area_view.HEAT_CLASSES[0])
    assert rows["D"]["colour"] == list(area_view.SUPPRESSED_COLOUR)
    assert rows["E"]["colour"][3] == 0  # nothing dispensed: no shade at all
    assert area_view.heat_labels(collection) == {
        "A": "100", "B": "50", "C": "<5", "D": "suppressed", "E": "0"}
    assert "fewer than 5" in area_view.heat_legend(5)
    assert "fewer than" not in area_view.heat_legend(None)  # admin sees every count


def test_heat_and_hotspot_colours_are_never_a_machine_state_colour() -> None:
    states = {colour[:3] for colour in fleet_view.HEALTH_COLOURS.values()}
    others = [*area_view.HEAT_CLASSES, area_view.SUPPRESSED_COLOUR, area_view.OUTLINE_COLOUR,
              fleet_view.HOTSPOT_FILL, fleet_view.HOTSPOT_LINE]
    assert not states & {colour[:3] for colour in others}
    # Opaque markers keep their exact colour over any layer (the browser test counts them).
    assert all(colour[3] == 255 for colour in fleet_view.HEALTH_COLOURS.values())


def test_labels_put_the_published_total_under_the_name() -> None:
    names = [{"name": "A", "lon": 0.0, "lat": 0.0}, {"name": "B", "lon": 1.0, "lat": 1.0}]
    labels = area_view.labelled(names, {"A": "<5", "B": "0"})
    assert [row["label"] for row in labels] == ["A\n<5", "B"]
