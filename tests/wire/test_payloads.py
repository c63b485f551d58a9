"""MQTT payload models and the topic tree."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_agent.wire.payloads import (
    AuthorizeVendCommand,
    PayloadError,
    VendEvent,
    VendResult,
    parse_command,
    parse_event,
)
from firmware_agent.wire.topics import Channel, TopicError, machine_topic, parse_topic

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_event_round_trip_and_derived_id() -> None:
    event = VendEvent(machine_id="nyc-001", boot_id=3, seq=17, device_time=NOW, slot=2,
                      result=VendResult.OK)
    assert event.event_id == "nyc-001:3:17"
    assert parse_event(event.to_bytes()) == event
    assert b'"schema":1' in event.to_bytes()


def test_mismatched_event_id_is_refused() -> None:
    event = VendEvent(machine_id="nyc-001", boot_id=3, seq=17, device_time=NOW, slot=2,
                      result=VendResult.OK)
    forged = event.to_bytes().replace(b"nyc-001:3:17", b"nyc-001:3:18")
    with pytest.raises(PayloadError, match="event_id"):
        parse_event(forged)


def test_naive_device_time_is_refused() -> None:
    raw = (b'{"schema":1,"machine_id":"nyc-001","boot_id":1,"seq":1,'
           b'"device_time":"2026-11-24T12:00:00","kind":"door","state":"open"}')
    with pytest.raises(PayloadError, match="device_time"):
        parse_event(raw)


@given(st.binary(max_size=200))
def test_random_bytes_raise_payload_error(raw: bytes) -> None:
    with pytest.raises(PayloadError) as event_error:
        parse_event(raw)
    assert event_error.value.reason
    with pytest.raises(PayloadError) as command_error:
        parse_command(raw)
    assert command_error.value.reason


def test_unknown_command_kind_is_refused() -> None:
    with pytest.raises(PayloadError):
        parse_command(b'{"command_id":"c1","kind":"self_destruct"}')


def test_authorize_vend_command_parses_within_its_bounds() -> None:
    command = parse_command(b'{"command_id":"a1","kind":"authorize_vend","slot":3,"ttl_s":3600}')
    assert command == AuthorizeVendCommand(command_id="a1", slot=3, ttl_s=3600)
    assert parse_command(command.to_bytes()) == command
    for bad, where in ((b'"slot":3,"ttl_s":0', "ttl_s"), (b'"slot":3,"ttl_s":3601', "ttl_s"),
                       (b'"slot":3', "ttl_s"), (b'"slot":0,"ttl_s":5', "slot")):
        with pytest.raises(PayloadError, match=where):
            parse_command(b'{"command_id":"a1","kind":"authorize_vend",' + bad + b"}")


def test_topics_round_trip() -> None:
    assert machine_topic("nyc-001", Channel.CMD_RESULT) == "nx/v1/machines/nyc-001/cmd/result"
    assert parse_topic("nx/v1/machines/nyc-001/cmd/result") == ("nyc-001", Channel.CMD_RESULT)


@pytest.mark.parametrize("bad", ["nx/v1/machines/+/events", "nx/v1/machines/a/b/events",
                                 "other/nyc-001/events", "nx/v1/machines/nyc-001/nope"])
def test_bad_topics_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(bad)
