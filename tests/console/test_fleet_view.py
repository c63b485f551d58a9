"""Pure helpers that turn API data into map points, tiles and rows."""

from __future__ import annotations

import pytest

from console import fleet_view
from console.api_models import AlertPublic, Health, HotspotCollection, MachinePublic
from console.map_deck import MapLayers, fleet_deck
from tests.console.fake_api import alert_json, hotspot_json, machine_json


def _machine(machine_id: str, **kwargs: object) -> MachinePublic:
    return MachinePublic.model_validate(machine_json(machine_id, **kwargs))  # type: ignore[arg-type]


def _alert(alert_id: int, **kwargs: str) -> AlertPublic:
    return AlertPublic.model_validate(alert_json(alert_id, **kwargs))


def test_every_state_has_its_own_colour_label_and_legend_entry() -> None:
    colours = {fleet_view.HEALTH_COLOURS[h] for h in Health}
    assert len(colours) == len(Health)
    assert set(fleet_view.HEALTH_ORDER) == set(Health)
    legend = fleet_view.legend_html()
    for health in Health:
        assert fleet_view.HEALTH_LABELS[health] in legend
        assert fleet_view.hex_colour(fleet_view.HEALTH_COLOURS[health]) in legend
    assert fleet_view.hex_colour((255, 165, 0, 10)) == "#ffa500"


def test_points_carry_colour_by_health_and_skip_machines_without_coordinates() -> None:
    machines = [
        _machine("m-1", health="empty", counts=(0, 1)),
        _machine("m-2", health="ok", lat=None, lon=None),
    ]
    points = fleet_view.machine_points(machines)
    assert len(points) == 1
    point = points[0]
    assert point["id"] == "m-1"
    assert point["colour"] == list(fleet_view.HEALTH_COLOURS[Health.EMPTY])
    assert point["stock"] == "1/20 items"
    assert point["health_label"] == "Empty"


def test_view_centre_covers_every_point_and_zooms_out_for_a_wider_fleet() -> None:
    near = [{"lat": 39.95, "lon": -75.16}, {"lat": 39.96, "lon": -75.15}]
    far = [{"lat": 39.90, "lon": -75.25}, {"lat": 40.10, "lon": -74.95}]
    near_view = fleet_view.view_centre(near)
    far_view = fleet_view.view_centre(far)
    assert near_view.lat == pytest.approx(39.955)
    assert near_view.lon == pytest.approx(-75.155)
    assert far_view.zoom < near_view.zoom
    assert fleet_view.view_centre([]).lat == fleet_view.DEFAULT_CENTRE[0]


def test_health_counts_list_every_state_worst_first() -> None:
    machines = [
        _machine("a", health="ok"),
        _machine("b", health="ok"),
        _machine("c", health="alarm"),
    ]
    counts = fleet_view.health_counts(machines)
    assert list(counts) == list(fleet_view.HEALTH_ORDER)
    assert counts[Health.OK] == 2
    assert counts[Health.ALARM] == 1
    assert counts[Health.EMPTY] == 0


def test_machine_rows_put_the_worst_first() -> None:
    machines = [_machine("a", health="ok"), _machine("b", health="empty"), _machine("c")]
    rows = fleet_view.machine_rows(machines)
    assert [r["machine"] for r in rows] == ["b", "a", "c"]
    assert rows[0]["state"] == "Empty"


def test_alert_rows_sort_by_severity_then_newest_and_name_the_machine() -> None:
    alerts = [
        _alert(1, severity="warning", opened_at="2026-11-24T09:00:00Z"),
        _alert(2, severity="critical", opened_at="2026-11-24T08:00:00Z", machine_id="m-9"),
        _alert(3, severity="warning", opened_at="2026-11-24T10:00:00Z", alert_type="empty_slot"),
    ]
    rows = fleet_view.alert_rows(alerts, {"m-9": "Library"})
    assert [r["id"] for r in rows] == [2, 3, 1]
    assert rows[0]["machine"] == "Library"
    assert rows[1]["type"] == "empty slot"
    assert fleet_view.alert_types(alerts) == ["empty_slot", "low_stock"]
    assert fleet_view.alert_label(alerts[1], {"m-9": "Library"}).startswith("#2 critical")


def test_slot_rows_give_fill_fractions() -> None:
    rows = fleet_view.slot_rows(_machine("a", counts=(5, 0)))
    assert [r["fill"] for r in rows] == [0.5, 0.0]
    assert fleet_view.stock_totals(_machine("a", counts=(5, 0))) == (5, 20)


def test_deck_has_one_pickable_layer_with_every_point() -> None:
    points = fleet_view.machine_points([_machine("a"), _machine("b", health="offline")])
    deck = fleet_deck(points, fleet_view.view_centre(points))
    spec = deck.to_json()
    assert '"ScatterplotLayer"' in spec
    assert spec.count('"health_label"') == 2
    assert deck.initial_view_state.latitude == pytest.approx(39.95)


def test_hotspot_circles_have_metre_radii_and_honest_labels() -> None:
    collection = HotspotCollection.model_validate(
        {
            "type": "FeatureCollection",
            "features": [
                hotspot_json(1, 39.99, -75.12, radius_km=1.5, p_value=0.002),
                hotspot_json(2, 40.0, -75.1, radius_km=0.0),
            ],
        }
    )
    circles = fleet_view.hotspot_circles(collection)
    assert [(c["lat"], c["lon"]) for c in circles] == [(39.99, -75.12), (40.0, -75.1)]
    assert circles[0]["radius_m"] == 1500.0
    assert circles[1]["radius_m"] == 500.0  # a one-machine cluster still shows
    assert "14 dispenses vs 3.20 expected" in circles[0]["label"]
    assert "p = 0.002" in circles[0]["label"]


def test_deck_draws_hotspots_under_the_machines() -> None:
    points = fleet_view.machine_points([_machine("a")])
    circles = [{"lat": 39.95, "lon": -75.16, "radius_m": 800.0, "label": "x"}]
    deck = fleet_deck(points, fleet_view.view_centre(points), MapLayers(hotspots=circles))
    assert [layer.id for layer in deck.layers] == ["hotspots", "machine-states", "machines"]


def test_event_rows_flatten_the_backend_event_shape() -> None:
    events = [
        {
            "kind": "vend",
            "boot_id": 2,
            "seq": 41,
            "device_time": "2026-11-24T10:15:03.123456+00:00",
            "received_at": "2026-11-24T10:15:04+00:00",
            "slot": 1,
            "data": {"result": "ok", "product": "naloxone-nasal-4mg"},
        },
        {"kind": "door", "device_time": "2026-11-24T10:20:00Z", "state": "open"},
    ]
    rows = fleet_view.event_rows(events)
    assert rows[0] == {
        "time": "2026-11-24 10:15:03",
        "kind": "vend",
        "slot": 1,
        "detail": "product=naloxone-nasal-4mg, result=ok",
    }
    assert rows[1]["detail"] == "state=open"
    assert rows[1]["slot"] is None


def test_selected_machine_ids_read_the_map_selection_and_tolerate_anything_else() -> None:
    state = {"selection": {"objects": {"machines": [{"id": "m-1", "name": "x"}], "hotspots": []}}}
    assert fleet_view.selected_machine_ids(state) == ["m-1"]
    assert fleet_view.selected_machine_ids({"selection": {"objects": {}}}) == []
    assert fleet_view.selected_machine_ids(None) == []
    assert fleet_view.selected_machine_ids({"selection": {"objects": {"machines": [1]}}}) == []
