"""The fleet layout, the geography table, the clock and the restock policy."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from firmware_agent.wire.topics import validate_machine_id
from simulators.clock import SimClock
from simulators.fleet_plan import JITTER_M, PRODUCTS, plan_fleet
from simulators.geography import LAT_RANGE, LON_RANGE, NEIGHBOURHOODS
from simulators.restock import RestockPolicy

NOON = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_neighbourhoods_lie_inside_the_city() -> None:
    names = [n.name for n in NEIGHBOURHOODS]
    assert len(names) == len(set(names)) >= 24
    for place in NEIGHBOURHOODS:
        assert LAT_RANGE[0] < place.lat < LAT_RANGE[1], place
        assert LON_RANGE[0] < place.lon < LON_RANGE[1], place
        assert place.weight > 0


def test_plan_is_seeded_valid_and_spread_over_the_city() -> None:
    fleet = plan_fleet(24, seed=1)
    assert fleet == plan_fleet(24, seed=1)
    assert fleet != plan_fleet(24, seed=2)
    assert len({m.machine_id for m in fleet}) == 24
    assert len({m.site for m in fleet}) == 24
    for machine in fleet:
        validate_machine_id(machine.machine_id)
        assert LAT_RANGE[0] < machine.lat < LAT_RANGE[1]
        assert LON_RANGE[0] < machine.lon < LON_RANGE[1]
        assert [s.slot for s in machine.slots] == list(range(1, len(PRODUCTS) + 1))
        for slot in machine.slots:
            assert slot.capacity // 2 <= slot.count <= slot.capacity
            assert slot.as_registration()["product"] == slot.product


def test_markers_stay_near_their_neighbourhood() -> None:
    centres = {n.name: n for n in NEIGHBOURHOODS}
    for machine in plan_fleet(60, seed=4):
        centre = centres[machine.site]
        dy = (machine.lat - centre.lat) * 111_320
        dx = (machine.lon - centre.lon) * 111_320 * math.cos(math.radians(centre.lat))
        assert math.hypot(dx, dy) <= JITTER_M + 5


def test_busier_neighbourhoods_get_more_demand() -> None:
    fleet = plan_fleet(30, mean_per_day=6.0)
    by_site = {m.site: m.per_day for m in fleet}
    assert by_site["Kensington"] > by_site["Manayunk"] * 4
    assert sum(by_site.values()) / len(by_site) == pytest.approx(6.0, rel=0.01)
    with pytest.raises(ValueError, match="at least one"):
        plan_fleet(0)


def test_clock_runs_at_its_speed() -> None:
    now = [100.0]
    clock = SimClock(NOON, speed=60.0, monotonic=lambda: now[0])
    assert clock.now() == NOON
    now[0] += 2.5
    assert clock.now() == NOON + timedelta(minutes=2.5)
    assert clock.real_seconds(timedelta(hours=1)) == 60.0
    with pytest.raises(ValueError, match="positive"):
        SimClock(NOON, speed=0)
    with pytest.raises(ValueError, match="timezone"):
        SimClock(datetime(2026, 1, 1), speed=1)


def test_restock_waits_for_the_delay_then_forgets_the_machine() -> None:
    policy = RestockPolicy(delay=timedelta(hours=4))
    policy.slot_empty("phl-001", 1, NOON)
    policy.slot_empty("phl-001", 1, NOON + timedelta(hours=3))  # the first note counts
    policy.slot_empty("phl-002", 3, NOON + timedelta(hours=1))
    assert policy.due(NOON + timedelta(hours=3)) == []
    assert policy.due(NOON + timedelta(hours=4)) == ["phl-001"]
    assert policy.due(NOON + timedelta(hours=6)) == ["phl-001", "phl-002"]
    policy.visited("phl-001")
    assert policy.due(NOON + timedelta(hours=6)) == ["phl-002"]


def test_a_held_clock_stands_still_and_runs_on_from_where_it_was_held() -> None:
    now = [0.0]
    clock = SimClock(NOON, speed=10.0, monotonic=lambda: now[0], running=False)
    now[0] += 100
    assert not clock.running
    assert clock.now() == NOON
    clock.hold(NOON + timedelta(hours=1))
    assert clock.now() == NOON + timedelta(hours=1)
    clock.release()
    now[0] += 6
    assert clock.now() == NOON + timedelta(hours=1, minutes=1)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.hold(NOON)
