"""The Machines admin page headless (AppTest) with the API faked at the client seam."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.console.apptest import open_page, sign_in
from tests.console.fake_api import FakeState
from tests.console.memory_api import MemoryApi

PAGE = "views/admin.py"
SEND = "FormSubmitter:admin_planogram_test-001-Send planogram to the machine"


@pytest.fixture
def api(fake_state: FakeState, monkeypatch: pytest.MonkeyPatch) -> MemoryApi:
    """An in-memory API with the fake fleet, signed in as admin."""
    return sign_in(monkeypatch,
                   MemoryApi(fake_state.machines, fake_state.alerts, fake_state.hotspots),
                   "admin")


def _open() -> AppTest:
    return open_page(PAGE)


def _lines(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_an_admin_planogram_edit_is_a_command_shown_pending_then_done(api: MemoryApi) -> None:
    at = _open()
    assert at.title[0].value == "Machines admin"
    assert list(at.dataframe[0].value["machine"]) == [f"test-00{n}" for n in range(1, 6)]
    assert at.selectbox(key="admin_machine").value == "test-001"
    assert "No command sent to this machine yet." in [c.value for c in at.caption]
    at.button(key=SEND).click().run()  # nothing edited
    assert "Nothing changed." in at.error[0].value
    assert api.sent_commands == []
    at.number_input(key="admin_pg_test-001_1_par").set_value(9)
    at.number_input(key="admin_pg_test-001_1_low").set_value(3)
    at.button(key=SEND).click().run()
    assert not at.error, [e.value for e in at.error]
    [command] = api.sent_commands
    assert command.kind == "planogram"
    assert command.payload["slots"] == [
        {"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 10, "par": 9,
         "low_threshold": 3},
        {"slot": 2, "product": "naloxone-nasal-4mg", "capacity": 10, "par": 8,
         "low_threshold": 2},
    ]
    assert "pending until the machine answers" in at.success[0].value
    assert any(s.value == "Commands (1 pending)" for s in at.subheader)
    assert ("**:material/hourglass_empty: pending** · planogram: slot 1 naloxone-nasal-4mg "
            "cap 10 par 9 low 3") in _lines(at)
    # The books keep the old par until the machine confirms.
    assert api.machines[0]["slots"][0]["par"] == 8
    api.answer(command.command_id, ok=True)
    at.run()  # the command list also redraws on its own every refresh_s
    assert any(s.value == "Commands (0 pending)" for s in at.subheader)
    assert "**:material/check_circle: done** · planogram" in _lines(at)
    assert at.number_input(key="admin_pg_test-001_1_par").value == 9


def test_a_refused_planogram_says_what_the_machine_said(api: MemoryApi) -> None:
    at = _open()
    at.number_input(key="admin_pg_test-001_2_capacity").set_value(6)
    at.button(key=SEND).click().run()
    # Par 8 no longer fits a capacity of 6: caught before sending.
    assert "Slot 2: par must be between 0 and the capacity (6)." in at.error[0].value
    at.number_input(key="admin_extra_test-001").set_value(1).run()
    at.number_input(key="admin_pg_test-001_2_par").set_value(6)
    at.text_input(key="admin_pg_test-001_3_product").input("fentanyl-test-strip")
    at.number_input(key="admin_pg_test-001_3_capacity").set_value(40)
    at.button(key=SEND).click().run()
    assert not at.error, [e.value for e in at.error]
    [command] = api.sent_commands
    assert [s["slot"] for s in command.payload["slots"]] == [1, 2, 3]
    assert command.payload["slots"][2] == {"slot": 3, "product": "fentanyl-test-strip",
                                           "capacity": 40}
    api.answer(command.command_id, ok=False, error="controller refused some slots")
    at.run()
    assert "**:material/error: failed** · planogram" in _lines(at)
    assert "machine said: controller refused some slots" in _lines(at)
    assert len(api.machines[0]["slots"]) == 2  # nothing adopted


def test_name_and_place_change_at_once_and_only_what_changed_is_sent(api: MemoryApi) -> None:
    at = _open()
    at.text_input(key="admin_name_test-001").input("Library steps")
    at.text_input(key="admin_site_test-001").input("")
    at.button(key="FormSubmitter:admin_place_test-001-Save name and place").click().run()
    assert not at.error, [e.value for e in at.error]
    assert api.machine_edits == [("test-001", {"name": "Library steps", "site": None})]
    assert "test-001: name, site saved." in at.success[0].value
    assert at.dataframe[0].value["name"][0] == "Library steps"


def test_registering_a_machine_shows_its_credential_once(api: MemoryApi) -> None:
    at = _open()
    submit = "FormSubmitter:admin_register-Register and make its credential"
    at.text_input(key="admin_new_id").input("Bad Id")
    at.button(key=submit).click().run()
    problems = at.error[0].value
    assert "Machine id" in problems
    assert "Name: required" in problems
    assert "Latitude and longitude are required." in problems
    assert api.devices == []
    at.text_input(key="admin_new_id").input("phl-031")
    at.text_input(key="admin_new_name").input("Kensington & Allegheny")
    at.number_input(key="admin_new_lat").set_value(39.9968)
    at.number_input(key="admin_new_lon").set_value(-75.1262)
    at.button(key=submit).click().run()
    assert not at.error, [e.value for e in at.error]
    assert api.devices == [{"machine_id": "phl-031", "name": "Kensington & Allegheny",
                            "lat": 39.9968, "lon": -75.1262}]
    assert 'mqtt_password = "pw-1"' in at.code[0].value
    at.run()
    assert not at.code  # shown once
    assert "phl-031" in list(at.dataframe[0].value["machine"])
