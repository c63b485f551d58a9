"""The Restock page headless (AppTest) with the API faked at the client seam."""

from __future__ import annotations

from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from tests.console.apptest import APP, RUN_TIMEOUT_S, open_page, sign_in
from tests.console.fake_api import FakeState
from tests.console.memory_api import MemoryApi

PAGE = "views/restock.py"
SUBMIT = "FormSubmitter:visit_test-003-Record visit"


@pytest.fixture
def api(fake_state: FakeState, monkeypatch: pytest.MonkeyPatch) -> MemoryApi:
    """An in-memory API with the fake fleet and a two-van plan, signed in as outreach."""
    return sign_in(monkeypatch,
                   MemoryApi(fake_state.machines, fake_state.alerts, fake_state.hotspots),
                   "outreach")


def _open() -> AppTest:
    return open_page(PAGE)


def _titles(at: AppTest) -> list[str]:
    return [e.label for e in at.expander]


def _text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_the_route_is_drawn_and_each_stop_says_what_to_load(api: MemoryApi) -> None:
    at = _open()
    assert at.title[0].value == "Restock"
    # Planned once, from the middle of the fleet (no NX_CONSOLE_DEPOT), for one van.
    assert len(api.plan_requests) == 1
    assert api.plan_requests[0]["depot"] == "39.9500,-75.1600"
    assert (api.plan_requests[0]["vans"], api.plan_requests[0]["shift_hours"]) == (1, 8.0)
    assert at.radio(key="restock_van").value == 1
    assert at.radio(key="restock_van").options[0].startswith("Van 1 · 2 stops · 12.5 km")
    deck = at.get("deck_gl_json_chart")[0].proto.json
    assert '"PathLayer"' in deck
    assert '"TextLayer"' in deck
    assert '"number": "1"' in deck
    assert '"number": "2"' in deck
    titles = _titles(at)
    stops = [t for t in titles if t[0].isdigit()]
    assert stops == ["1 · Machine test-003 · 14:10 · Critical",
                     "2 · Machine test-002 · 14:40 · Urgent"]
    text = _text(at)
    # Product and load per slot as a line each, never a column off-screen.
    assert "**Slot 1:** naloxone-nasal-4mg — load **8** (has 0, par 8)" in text
    assert "**Slot 2:** naloxone-nasal-4mg — load **8** (has 0, par 8)" in text
    assert "**naloxone-nasal-4mg:** 22" in text  # the van's load list
    assert "**test-004** (Critical, 16 items): offline" in text  # left out, with why
    assert not at.dataframe  # no wide tables on a phone page
    assert not at.error


def test_ticks_survive_reruns_and_a_van_switch_without_replanning(api: MemoryApi) -> None:
    at = _open()
    at.checkbox(key="restock_tick_test-002").check().run()
    assert "2 · Machine test-002 · 14:40 · Urgent" not in _titles(at)
    assert ":material/check_circle: Done · 2 · Machine test-002 · 14:40 · Urgent" in _titles(at)
    assert "1 of 2 stops done" in [c.value for c in at.caption]
    at.radio(key="restock_van").set_value(2).run()
    assert "Done" not in "".join(_titles(at))
    at.radio(key="restock_van").set_value(1).run()
    assert ":material/check_circle: Done · 2 · Machine test-002 · 14:40 · Urgent" in _titles(at)
    assert len(api.plan_requests) == 1  # ticking and switching vans never re-plan


def test_a_visit_is_checked_then_posted_once_even_when_the_answer_is_lost(
    api: MemoryApi,
) -> None:
    at = _open()
    at.number_input(key="visit_test-003_1_found").set_value(1)
    at.text_input(key="visit_test-003_1_lot0").input("  NX2291A ")  # a scanner's padding
    at.date_input(key="visit_test-003_1_expiry0").set_value(date(2028, 1, 31))
    at.button(key=SUBMIT).click().run()
    # Slot 2 still says 8 loaded with no lot: nothing is sent until that is fixed.
    assert "Slot 2: 8 loaded without a lot number." in at.error[0].value
    assert api.visit_posts == []
    at.text_input(key="visit_test-003_2_lot0").input("NX2291A")
    at.date_input(key="visit_test-003_2_expiry0").set_value(date(2028, 1, 31))
    api.lose_visit_answers = 1  # recorded, but the phone never hears back
    at.button(key=SUBMIT).click().run()
    assert "may not have reached the server" in at.error[0].value
    at.button(key=SUBMIT).click().run()  # the worker retries
    assert not at.error, [e.value for e in at.error]
    keys = [key for key, _ in api.visit_posts]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert len(api.recorded_visits) == 1  # one visit, whatever the retries
    body = api.visit_posts[0][1]
    assert body == {"machine_id": "test-003", "slots": [
        {"slot": 1, "found": 1, "loaded": [{"lot_number": "NX2291A",
                                            "product": "naloxone-nasal-4mg",
                                            "expiry": "2028-01-31", "quantity": 8}]},
        {"slot": 2, "loaded": [{"lot_number": "NX2291A", "product": "naloxone-nasal-4mg",
                                "expiry": "2028-01-31", "quantity": 8}]},
    ]}
    assert any("Visit #1 recorded" in s.value for s in at.success)
    assert ":material/check_circle: Done · 1 · Machine test-003 · 14:10 · Critical" in _titles(at)
    # A second visit to the same machine gets a new key.
    at.button(key="visit_again_test-003").click().run()
    at.number_input(key="visit_test-003_1_found").set_value(8)
    at.number_input(key="visit_test-003_1_qty0").set_value(0)
    at.number_input(key="visit_test-003_2_qty0").set_value(0)
    at.button(key=SUBMIT).click().run()
    assert not at.error, [e.value for e in at.error]
    assert len({key for key, _ in api.visit_posts}) == 2
    assert api.visit_posts[-1][1] == {"machine_id": "test-003",
                                      "slots": [{"slot": 1, "found": 8}]}


def test_stock_taken_out_is_sent_with_its_reason(api: MemoryApi) -> None:
    at = _open()
    at.number_input(key="visit_test-003_1_removed").set_value(2)
    at.selectbox(key="visit_test-003_1_reason").set_value("heat_exposed")
    at.text_input(key="visit_test-003_1_removed_lot").input("OLD-7")
    for slot in (1, 2):
        at.number_input(key=f"visit_test-003_{slot}_qty0").set_value(0)
    at.number_input(key="visit_test-003_1_after").set_value(0)
    at.button(key=SUBMIT).click().run()
    assert not at.error, [e.value for e in at.error]
    assert api.visit_posts[0][1]["slots"] == [
        {"slot": 1, "removed": [{"reason": "heat_exposed", "quantity": 2, "lot_number": "OLD-7"}],
         "count_after": 0},
    ]


def test_a_new_shift_is_planned_only_when_asked(api: MemoryApi) -> None:
    at = _open()
    at.text_input(key="restock_depot").input("39.9526,-75.1652")
    at.number_input(key="restock_vans").set_value(2)
    at.button(key="FormSubmitter:restock_shift-Plan the shift").click().run()
    assert len(api.plan_requests) == 2
    assert api.plan_requests[-1]["depot"] == "39.9526,-75.1652"
    assert api.plan_requests[-1]["vans"] == 2
    at.text_input(key="restock_depot").input("somewhere")
    at.button(key="FormSubmitter:restock_shift-Plan the shift").click().run()
    assert "is not LAT,LON" in at.error[0].value
    assert len(api.plan_requests) == 2


def test_a_failing_planner_is_reported(api: MemoryApi) -> None:
    api.failure = "GET /api/v1/restock/plan failed with 503: matrix file unreadable"
    at = _open()
    assert "Cannot" in at.error[0].value
    assert not at.exception


def test_an_issued_plan_is_shared_by_its_address(api: MemoryApi) -> None:
    lead = _open()
    assert "A preview" in lead.caption[0].value
    lead.button(key="restock_issue").click().run()
    assert not lead.error, [e.value for e in lead.error]
    [issued] = api.issued
    assert issued.issued_by == "test-outreach"
    assert f"Issued plan #{issued.id} by test-outreach" in lead.caption[0].value
    assert lead.query_params["plan"] == str(issued.id)
    asked = len(api.plan_requests)
    # A van crew opens the shared address on another phone: the issued plan, not a new one.
    crew = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    crew.run()
    crew.switch_page(PAGE)
    crew.query_params["plan"] = str(issued.id)
    crew.run()
    assert not crew.exception, crew.exception
    assert f"Issued plan #{issued.id}" in crew.caption[0].value
    assert len(api.plan_requests) == asked
    assert "1 · Machine test-003 · 14:10 · Critical" in _titles(crew)
    assert all(b.key != "restock_issue" for b in crew.button)
