"""The Streamlit pages, run headless with AppTest and the API client replaced at one seam."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from console import area_view, session
from console.client import ApiClient
from tests.console.apptest import APP, RUN_TIMEOUT_S, open_page, sign_in
from tests.console.fake_api import FakeState
from tests.console.memory_api import ROLE_TOKENS, MemoryApi


@pytest.fixture
def memory_api(fake_state: FakeState, monkeypatch: pytest.MonkeyPatch) -> MemoryApi:
    """Pages get an in-memory API holding the fake fleet, signed in as admin by a preset token."""
    api = MemoryApi(fake_state.machines, fake_state.alerts, fake_state.hotspots)
    api.area_features, api.area_totals = fake_state.areas, fake_state.area_totals
    return sign_in(monkeypatch, api, "admin")


_run = open_page


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_fleet_map_shows_state_tiles_map_and_open_alerts(memory_api: MemoryApi) -> None:
    at = _run()
    assert at.title[0].value == "Fleet map"
    metrics = _metrics(at)
    assert metrics["Machines"] == "5"
    assert metrics["OK"] == "1"
    assert metrics["Empty"] == "1"
    assert metrics["Alarm"] == "1"
    assert any("Open alerts (2)" in s.value for s in at.subheader)
    assert not at.error
    charts = at.get("deck_gl_json_chart")
    assert len(charts) == 1
    # The machine without coordinates is left off the map, not drawn at (0, 0).
    assert charts[0].proto.json.count('"health_label"') == 4
    assert '"radius_m": 800.0' in charts[0].proto.json  # the hotspot circle
    assert any(s.value == "Hotspots (1)" for s in at.subheader)


def _deck_layers(at: AppTest) -> dict[str, dict[str, Any]]:
    deck = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    return {layer["id"]: layer for layer in deck["layers"]}


def test_fleet_map_draws_areas_dispense_heat_and_states_in_words(memory_api: MemoryApi) -> None:
    at = _run()
    layers = _deck_layers(at)
    # Bottom to top: heat, outlines, hotspots, machines, then the words.
    assert list(layers) == ["heat", "area-outlines", "hotspots", "area-names",
                            "machine-states", "machines"]
    assert [row["name"] for row in layers["area-outlines"]["data"]] == ["Kensington", "Fairhill"]
    labels = {row["name"]: row["label"] for row in layers["area-names"]["data"]}
    # The totals as the backend published them: "<5" stays "<5", never a number.
    assert labels == {"Kensington": "Kensington\n42", "Fairhill": "Fairhill\n<5"}
    heat = {row["name"]: row for row in layers["heat"]["data"]}
    assert heat["Kensington"]["colour"] == list(area_view.HEAT_CLASSES[-1])
    assert heat["Fairhill"]["colour"] == list(area_view.HEAT_CLASSES[0])
    states = sorted(row["state_text"] for row in layers["machine-states"]["data"])
    assert states == ["EMPTY", "LOW STOCK", "OFFLINE", "OK"]  # the alarm has no coordinates
    first, last = memory_api.heat_ranges[-1]
    assert (last - first).days == 27  # 28 days by default
    assert any("never by single dispense" in c.value for c in at.caption)
    at.radio(key="heat_days").set_value("7 days").run()
    first, last = memory_api.heat_ranges[-1]
    assert (last - first).days == 6
    assert not at.exception


def test_fleet_map_heat_counts_to_the_backends_day_not_the_wall_clocks(
    memory_api: MemoryApi
) -> None:
    # The accelerated demo: the backend's data clock is months ahead of this machine's.
    memory_api.stats_day = date(2027, 3, 1)
    at = _run()
    assert memory_api.heat_ranges[-1] == (date(2027, 2, 2), date(2027, 3, 1))
    assert any(c.value.startswith("Dispenses 02 Feb – 01 Mar 2027.") for c in at.caption)
    # A backend that cannot say (404) leaves this machine's day.
    memory_api.stats_day = None
    at = _run()
    assert memory_api.heat_ranges[-1][1] in {date.today(), date.today() - timedelta(days=1)}
    assert not at.exception


def test_fleet_map_for_outreach_has_area_outlines_but_no_dispense_counts(
    memory_api: MemoryApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "preset_token", lambda: ROLE_TOKENS["outreach"])
    at = _run()
    layers = _deck_layers(at)
    assert "heat" not in layers
    assert "hotspots" not in layers
    assert {row["label"] for row in layers["area-names"]["data"]} == {"Kensington", "Fairhill"}
    assert memory_api.heat_ranges == []  # never asked: dispense counts are health's
    assert not at.radio


def test_fleet_map_still_draws_machines_when_the_areas_fail(memory_api: MemoryApi) -> None:
    memory_api.area_failure = "areas route failed with 500"
    at = _run()
    assert "Area outlines unavailable" in at.warning[0].value
    assert list(_deck_layers(at)) == ["hotspots", "machine-states", "machines"]


def test_fleet_map_still_draws_when_hotspots_fail(memory_api: MemoryApi) -> None:
    memory_api.hotspot_failure = "hotspots route failed with 500"
    at = _run()
    assert "Hotspots unavailable" in at.warning[0].value
    assert _metrics(at)["Machines"] == "5"
    assert len(at.get("deck_gl_json_chart")) == 1


def test_fleet_map_says_so_when_the_api_fails(memory_api: MemoryApi) -> None:
    memory_api.failure = "cannot reach the API at http://127.0.0.1:9"
    at = _run()
    assert "Cannot load the fleet" in at.error[0].value
    assert not at.metric


def test_fleet_map_through_the_real_client_and_http(
    fake_api: str, fake_state: FakeState, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = fake_state.add_identity("test-admin", "admin")
    monkeypatch.setattr(session, "make_client", lambda t: ApiClient(fake_api, token=t))
    monkeypatch.setattr(session, "preset_token", lambda: token)
    at = _run()
    assert _metrics(at)["Machines"] == "5"
    assert not at.error


def test_alerts_page_acknowledges_then_resolves(memory_api: MemoryApi) -> None:
    at = _run("views/alerts.py")
    assert at.title[0].value == "Alerts"
    assert "2 of 2 alerts" in at.caption[0].value
    at.selectbox(key="alerts_chosen").set_value("2").run()
    at.button(key="alerts_ack").click().run()
    assert memory_api.actions == [("acknowledged", 2)]
    at.selectbox(key="alerts_status").set_value("acknowledged").run()
    assert "2 of 2 alerts" in at.caption[0].value  # alerts 2 and 3 are now acknowledged
    at.selectbox(key="alerts_chosen").set_value("2").run()
    at.button(key="alerts_resolve").click().run()
    assert memory_api.actions[-1] == ("resolved", 2)
    assert not at.exception


def test_alerts_page_filters_by_machine_and_type(memory_api: MemoryApi) -> None:
    at = _run("views/alerts.py")
    at.selectbox(key="alerts_type").set_value("empty_slot").run()
    assert "1 of 2 alerts" in at.caption[0].value
    at.selectbox(key="alerts_type").set_value("all").run()
    at.selectbox(key="alerts_machine").set_value("test-002").run()
    assert "1 of 1 alerts" in at.caption[0].value


def test_machine_page_shows_slots_and_events_worst_machine_first(memory_api: MemoryApi) -> None:
    at = _run("views/machine.py")
    assert at.selectbox(key="machine_id").value == "test-005"  # alarm sorts first
    at.selectbox(key="machine_id").set_value("test-003").run()
    metrics = _metrics(at)
    assert metrics["State"] == "Empty"
    assert metrics["Stock"] == "0/20 items"
    assert len(at.dataframe) == 3  # slots, recent events and discrepancies
    assert not at.error


def test_machine_page_handles_a_machine_that_vanished(memory_api: MemoryApi) -> None:
    memory_api.gone = {"test-005"}
    at = _run("views/machine.py")
    assert at.selectbox(key="machine_id").value == "test-005"
    assert "no longer registered" in at.warning[0].value
    assert not at.error


def test_a_machine_picked_on_the_map_links_to_its_detail_page(memory_api: MemoryApi) -> None:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    # What st.pydeck_chart reports after a click on a machine's dot.
    at.session_state["fleet_map"] = {
        "selection": {"indices": {"machines": [2]}, "objects": {"machines": [{"id": "test-003"}]}}
    }
    at.run()
    assert not at.exception
    links = at.get("page_link")
    assert len(links) == 1
    assert links[0].proto.label == "Open Machine test-003"
    assert links[0].proto.query_string == "machine=test-003"


def test_alerts_page_gives_phones_one_card_per_alert_most_severe_first(
    memory_api: MemoryApi,
) -> None:
    at = _run("views/alerts.py")
    cards = [m.value for m in at.markdown if m.value.startswith("**#")]
    assert len(cards) == 2  # the open ones, as in the table
    assert cards[0].startswith("**#2 high empty slot at Machine test-003**")
    assert "open · opened 2026-11-24 10:00:00" in cards[0]
    # No stray text: Streamlit's magic prints a bare module-level string on the page.
    assert not [m.value for m in at.markdown if "shown as cards" in m.value]
