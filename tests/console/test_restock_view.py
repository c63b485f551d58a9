"""Pure rendering decisions of the Restock page: depot, lines, map points, visit bodies."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from console import restock_view
from console.api_models import MachinePublic, RestockPlan
from console.restock_view import LotEntry, RemovalEntry, SlotEntry
from tests.console.fake_api import machine_json, plan_json, stop_json

UTC_ZONE = ZoneInfo("UTC")
TODAY = date(2026, 11, 24)


def _plan() -> RestockPlan:
    return RestockPlan.model_validate(plan_json([[
        stop_json(1, "m-1", loads=((1, 0, 8), (2, 5, 8)), lat=40.0, lon=-75.0),
        stop_json(2, "m-2", urgency="routine", arrival="2026-11-24T15:10:00Z", lat=40.1,
                  lon=-75.1),
    ]], depot=(39.9, -75.2)))


def test_the_depot_is_the_setting_else_the_middle_of_the_placed_machines() -> None:
    machines = [MachinePublic.model_validate(machine_json(f"m-{n}", lat=lat, lon=lon))
                for n, (lat, lon) in enumerate([(40.0, -75.0), (41.0, -76.0), (None, None)])]
    assert restock_view.default_depot(machines, None) == "40.5000,-75.5000"
    assert restock_view.default_depot(machines, "39.9, -75.1") == "39.9,-75.1"
    assert restock_view.default_depot([], None) == restock_view.FALLBACK_DEPOT


def test_a_stop_reads_as_short_lines_with_each_slots_product_and_load() -> None:
    stop = _plan().vans[0].stops[0]
    new_york = ZoneInfo("America/New_York")
    assert restock_view.stop_title(stop, new_york, done=False) == (
        "1 · Machine m-1 · 09:10 · Critical")
    assert restock_view.stop_title(stop, UTC_ZONE, done=True).startswith(
        ":material/check_circle: Done · 1 · ")
    lines = restock_view.stop_lines(stop, UTC_ZONE)
    assert lines[0] == "**Arrive:** 14:10 · **leave:** 14:20"
    assert "**Slot 1:** naloxone-nasal-4mg — load **8** (has 0, par 8)" in lines
    assert "**Slot 2:** naloxone-nasal-4mg — load **3** (has 5, par 8)" in lines
    assert lines[-1] == "**Items from the van:** 11"
    # Short lines: nothing a phone has to scroll sideways for.
    assert max(len(line) for line in lines) < 80


def test_doses_to_replace_name_their_lots() -> None:
    raw = stop_json(1, "m-1")
    raw["load"][0].update(replace=2, replace_lots=["OLD-1", "OLD-2"], quantity=10)
    plan = plan_json([[raw]])
    stop = RestockPlan.model_validate(plan).vans[0].stops[0]
    assert "**Slot 1 take out:** 2 (OLD-1, OLD-2)" in restock_view.stop_lines(stop, UTC_ZONE)


def test_van_label_progress_and_next_stop_follow_the_ticks() -> None:
    van = _plan().vans[0]
    assert restock_view.van_label(van, UTC_ZONE) == (
        "Van 1 · 2 stops · 12.5 km · 19 items · back 16:30")
    assert restock_view.progress(van, {"m-1"}) == "1 of 2 stops done"
    assert restock_view.next_stop(van, set()) is van.stops[0]
    assert restock_view.next_stop(van, {"m-1"}) is van.stops[1]
    assert restock_view.next_stop(van, {"m-1", "m-2"}) is None
    assert restock_view.load_lines(van) == ["**naloxone-nasal-4mg:** 19"]


def test_the_path_starts_and_ends_at_the_depot_and_done_stops_turn_grey() -> None:
    plan = _plan()
    van = plan.vans[0]
    assert restock_view.route_path(plan, van) == [
        [-75.2, 39.9], [-75.0, 40.0], [-75.1, 40.1], [-75.2, 39.9]]
    points = restock_view.stop_points(van, {"m-2"}, UTC_ZONE)
    assert [p["number"] for p in points] == ["1", "2"]
    assert points[0]["colour"] == restock_view.URGENCY_COLOURS["critical"]
    assert points[1]["colour"] == restock_view.DONE_COLOUR


def test_a_visit_body_keeps_what_was_entered_and_drops_empty_slots() -> None:
    draft = restock_view.visit_body("m-1", [
        SlotEntry(2, found=3, loaded=(LotEntry(" NX1\r\n", "naloxone-nasal-4mg",
                                               date(2028, 1, 1), 4), LotEntry())),
        SlotEntry(1, removed=RemovalEntry(2, "damaged", ""), count_after=6),
        SlotEntry(3),
    ], TODAY)
    assert draft.problems == []
    assert draft.body == {"machine_id": "m-1", "slots": [
        {"slot": 1, "removed": [{"reason": "damaged", "quantity": 2}], "count_after": 6},
        {"slot": 2, "found": 3, "loaded": [{"lot_number": "NX1", "product": "naloxone-nasal-4mg",
                                            "expiry": "2028-01-01", "quantity": 4}]},
    ]}


def test_a_visit_with_a_half_entered_or_expired_lot_is_not_sent() -> None:
    cases = {
        LotEntry("", "p", date(2028, 1, 1), 3): "3 loaded without a lot number",
        LotEntry("NX1", "p", None, 3): "needs its expiry date",
        LotEntry("NX1", "p", date(2026, 11, 23), 3): "expired on 2026-11-23; do not load it",
        LotEntry("NX1", "p", date(2028, 1, 1), 0): "needs how many were loaded",
        LotEntry("NX1;DROP", "p", date(2028, 1, 1), 3): "has characters a lot number cannot",
        LotEntry("NX1", "", date(2028, 1, 1), 3): "needs its product",
    }
    for entry, problem in cases.items():
        draft = restock_view.visit_body("m-1", [SlotEntry(1, loaded=(entry,))], TODAY)
        assert draft.body is None
        assert draft.problems == [draft.problems[0]], entry
        assert problem in draft.problems[0], (entry, draft)
    nothing = restock_view.visit_body("m-1", [SlotEntry(1, loaded=(LotEntry(),))], TODAY)
    assert nothing.body is None
    assert "Nothing to record" in nothing.problems[0]
    bad_removal = restock_view.visit_body(
        "m-1", [SlotEntry(1, removed=RemovalEntry(1, "stolen"))], TODAY)
    assert bad_removal.body is None


def test_the_visit_summary_says_counts_differences_and_alerts_closed() -> None:
    lines = restock_view.visit_summary({"2": 8, "10": 4}, [
        {"slot": 2, "expected": 5, "observed": 3}], resolved_alerts=2)
    assert lines == ["**Slot 2 now:** 8", "**Slot 10 now:** 4",
                     "**Slot 2 count differed:** books 5, found 3", "**Alerts closed:** 2"]
