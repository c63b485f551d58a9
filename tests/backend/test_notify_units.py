"""Pure parts of notifications: backoff, breaker, signature, routing, payload."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime

from backend.notify.backoff import retry_delay
from backend.notify.breaker import Breakers
from backend.notify.facts import AlertEvent, AlertFacts
from backend.notify.payload import alert_payload
from backend.notify.routing import RouteRule, route_matches
from backend.notify.signing import signature, verify


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    rand = random.Random(1)
    for attempt, ceiling in [(1, 5), (2, 10), (3, 20), (4, 40), (12, 3600)]:
        delays = [retry_delay(attempt, base_s=5, max_s=3600, rand=rand) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not one value


def test_breaker_opens_after_failures_in_a_row_and_closes_on_success() -> None:
    now = [0.0]
    breakers = Breakers(threshold=3, cooldown_s=10, clock=lambda: now[0])
    assert not breakers.failed("a")
    breakers.succeeded("a")  # a success resets the count
    assert not breakers.failed("a")
    assert not breakers.failed("a")
    assert breakers.failed("a")
    assert breakers.open_keys() == {"a"}
    assert not breakers.is_open("b")
    now[0] = 10.5
    assert not breakers.is_open("a")  # the trial delivery may go
    assert breakers.failed("a")  # and one more failure opens it again at once
    assert breakers.is_open("a")


def test_signature_is_the_hmac_of_timestamp_dot_body() -> None:
    header = signature("s3cret", 1_700_000_000, b'{"a":1}')
    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify("s3cret", header, b'{"a":1}', now=1_700_000_100)
    assert not verify("s3cret", header, b'{"a":1}', now=1_700_001_000)  # too old
    assert not verify("s3cret", "garbage", b'{"a":1}', now=1_700_000_000)


def test_routes_match_on_type_severity_and_area() -> None:
    rule = RouteRule(1, frozenset({"empty_slot"}), "warning", frozenset({"north"}))
    assert route_matches(rule, alert_type="empty_slot", severity="critical", areas={"north"})
    assert not route_matches(rule, alert_type="low_stock", severity="critical", areas={"north"})
    assert not route_matches(rule, alert_type="empty_slot", severity="info", areas={"north"})
    assert not route_matches(rule, alert_type="empty_slot", severity="critical", areas=set())
    anything = RouteRule(2, frozenset(), "info", frozenset())
    assert route_matches(anything, alert_type="x", severity="info", areas=set())


def test_a_hotspot_payload_has_its_figures_and_no_machine_list() -> None:
    at = datetime(2026, 12, 3, tzinfo=UTC)
    details = {"lat": 40.7, "lon": -74.0, "radius_km": 1.2, "observed": 9, "expected": 2.1,
               "p_value": 0.003, "recurrence_interval_days": 333.0, "machines": ["m1", "m2"],
               "statistic": 4.2, "start": "2026-12-01", "end": "2026-12-03"}
    facts = AlertFacts(5, "overdose_hotspot", "warning", "hotspot/abc", None, "surge", "open",
                       at, details=details)
    body = alert_payload(facts, AlertEvent.OPENED, at=at)
    assert body["hotspot"] == {
        "centre_lat": 40.7, "centre_lon": -74.0, "radius_km": 1.2, "observed": 9,
        "expected": 2.1, "p_value": 0.003, "recurrence_interval_days": 333.0,
        "start": "2026-12-01", "end": "2026-12-03"}
    assert "m1" not in str(body)
    assert body["console_path"] == "/alerts"
