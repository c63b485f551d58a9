"""Pure decisions of the Machines admin page: bodies, checks, command lines."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from console import admin_view
from console.api_models import MachineCommand, MachinePublic
from tests.console.fake_api import machine_json

MACHINE = MachinePublic.model_validate(machine_json("m-1"))


def _command(state: str, **extra: object) -> MachineCommand:
    return MachineCommand.model_validate({
        "command_id": "c1", "machine_id": "m-1", "kind": "planogram", "state": state,
        "payload": {"slots": [{"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 10,
                               "par": 9}]},
        "created_by": "ops", "created_at": datetime(2026, 11, 24, tzinfo=UTC),
        "send_count": 2, **extra})


def test_a_device_body_needs_an_id_the_broker_takes_a_name_and_a_place() -> None:
    good = admin_view.device_body(machine_id=" phl-031 ", name="Library", lat=39.9, lon=-75.1,
                                  site="", area="north")
    assert good.body == {"machine_id": "phl-031", "name": "Library", "lat": 39.9, "lon": -75.1,
                         "area": "north"}
    for bad_id in ("P", "Phl-1", "-abc", "a" * 64, "phl/1"):
        draft = admin_view.device_body(machine_id=bad_id, name="x", lat=1.0, lon=1.0, site="",
                                       area="")
        assert draft.body is None, bad_id
    no_place = admin_view.device_body(machine_id="ab", name="a\tb", lat=None, lon=1.0, site="",
                                      area="")
    assert len(no_place.problems) == 2


def test_place_changes_send_only_what_changed_and_never_clear_the_name() -> None:
    same = admin_view.place_changes(MACHINE, name=MACHINE.name, site="Kensington",
                                    lat=MACHINE.lat, lon=MACHINE.lon)
    assert same.problems == ["Nothing changed."]
    moved = admin_view.place_changes(MACHINE, name=" New name ", site="", lat=40.0,
                                     lon=MACHINE.lon)
    assert moved.body == {"name": "New name", "site": None, "lat": 40.0}
    assert admin_view.place_changes(MACHINE, name=" ", site="", lat=1.0, lon=1.0).body is None
    assert admin_view.place_changes(MACHINE, name="x", site="", lat=None, lon=1.0).body is None


def test_a_planogram_is_checked_and_sent_whole() -> None:
    current = admin_view.planogram_rows(MACHINE)
    assert admin_view.planogram_command(current, current).problems == ["Nothing changed."]
    rows = admin_view.with_new_slots(current, 2)
    assert [r["slot"] for r in rows] == [1, 2, 3, 4]
    rows[0] = {**rows[0], "par": 9.0}  # number cells may arrive as floats
    rows[2] = {**rows[2], "product": "test-strip", "capacity": 40}  # slot 4 stays blank
    draft = admin_view.planogram_command(rows, current)
    assert draft.body == {"kind": "planogram", "slots": [
        {"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 10, "par": 9,
         "low_threshold": 2},
        {"slot": 2, "product": "naloxone-nasal-4mg", "capacity": 10, "par": 8,
         "low_threshold": 2},
        {"slot": 3, "product": "test-strip", "capacity": 40},
    ]}


def test_a_planogram_the_machine_would_refuse_is_not_sent() -> None:
    base = {"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 10, "par": 8,
            "low_threshold": 2}
    cases = {
        "par must be between 0 and the capacity": {**base, "par": 11},
        "low threshold must be between 0 and par": {**base, "low_threshold": 9},
        "product must be a code": {**base, "product": "Naloxone 4mg"},
        "slot numbers run from 1 to 99": {**base, "slot": 100},
        "whole numbers": {**base, "capacity": 2.5},
        "capacity from 0": {**base, "capacity": math.nan},
    }
    for problem, row in cases.items():
        draft = admin_view.planogram_command([row], [])
        assert draft.body is None
        assert problem in " ".join(draft.problems), (problem, draft.problems)
    twice = admin_view.planogram_command([base, base], [])
    assert twice.problems == ["Slot 1 appears more than once."]
    assert admin_view.planogram_command([], []).problems == [
        "A planogram needs at least one slot."]


def test_command_lines_say_the_state_in_words_and_the_machines_answer() -> None:
    pending = admin_view.command_line(_command("pending"))
    assert pending == ("**:material/hourglass_empty: pending** · planogram: slot 1 "
                       "naloxone-nasal-4mg cap 10 par 9 low – · sent 2× · by ops")
    failed = admin_view.command_line(_command("failed", result={
        "ok": False, "error": "controller refused some slots"}))
    assert failed.startswith("**:material/error: failed**")
    assert failed.endswith("machine said: controller refused some slots")
    assert [c.state.value for c in admin_view.pending(
        [_command("pending"), _command("done"), _command("expired")])] == ["pending"]
