"""The per-machine dead-letter quota, as pure logic."""

from __future__ import annotations

import pytest

from backend.ingest.parse import Message, Rejected
from backend.ingest.quota import NO_MACHINE, Quota, Usage, apply_quota, topic_machine
from tests.backend.helpers import T0, events_topic


def junk(machine: str, size: int, *, malformed: bool = True) -> Rejected:
    return Rejected(Message(events_topic(machine), b"x" * size, T0), "bad", malformed=malformed)


@pytest.mark.parametrize(("topic", "machine"), [
    ("nx/v1/machines/m-1/events", "m-1"),
    ("nx/v1/machines/m-1/cmd/result", "m-1"),
    ("nx/v1/machines/" + "a" * 80 + "/events", "a" * 63),
    ("nx/v1/machines//events", NO_MACHINE),
    ("other/topic", NO_MACHINE),
])
def test_topic_machine(topic: str, machine: str) -> None:
    assert topic_machine(topic) == machine


def test_each_machine_keeps_what_fits_its_own_quota_in_arrival_order() -> None:
    batch = [junk("m-1", 40), junk("m-2", 10), junk("m-1", 40), junk("m-1", 40), junk("m-1", 5)]
    split = apply_quota(batch, {"m-1": Usage(1, 10)}, Quota(count=3, bytes=100))
    # m-1 starts with one letter of 10 bytes: 40 fits (50), 40 fits (90), then 40 would
    # pass 100 bytes and 5 would be a fourth letter.
    assert split.kept == [batch[0], batch[1], batch[2]]
    assert {m: (d.count, d.bytes) for m, d in split.dropped.items()} == {"m-1": (2, 45)}
    assert split.dropped_count == 2


def test_valid_messages_with_nowhere_to_go_are_always_kept() -> None:
    batch = [junk("m-1", 50, malformed=False) for _ in range(5)]
    split = apply_quota(batch, {"m-1": Usage(1000, 10**9)}, Quota(count=0, bytes=0))
    assert split.kept == batch
    assert split.dropped == {}


def test_a_zero_quota_keeps_no_junk() -> None:
    split = apply_quota([junk("m-1", 1)], {}, Quota(count=0, bytes=10**6))
    assert split.kept == []
    assert split.dropped_count == 1
