"""Fixtures for the console tests: a fake API on real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.console.fake_api import (
    FakeState,
    alert_json,
    area_json,
    hotspot_json,
    machine_json,
    serve,
)


@pytest.fixture
def fake_state() -> FakeState:
    """Five machines in different states, three alerts, one hotspot and two areas."""
    return FakeState(
        machines=[
            machine_json("test-001", health="ok"),
            machine_json("test-002", health="low_stock", counts=(2, 1), open_alerts=1),
            machine_json("test-003", health="empty", counts=(0, 0), open_alerts=1),
            machine_json("test-004", health="offline"),
            machine_json("test-005", health="alarm", lat=None, lon=None, open_alerts=1),
        ],
        alerts=[
            alert_json(1, machine_id="test-002", alert_type="low_stock"),
            alert_json(2, machine_id="test-003", alert_type="empty_slot", severity="high"),
            alert_json(3, machine_id="test-005", alert_type="door_open", status="acknowledged"),
        ],
        hotspots=[hotspot_json(9, 39.992, -75.123)],
        areas=[area_json("Kensington", 39.99, -75.12), area_json("Fairhill", 39.95, -75.16)],
        area_totals={"Kensington": 42, "Fairhill": "<5"},
    )


@pytest.fixture
def fake_api(fake_state: FakeState) -> Iterator[str]:
    """Base URL of a real HTTP server serving ``fake_state``."""
    with serve(fake_state) as url:
        yield url
