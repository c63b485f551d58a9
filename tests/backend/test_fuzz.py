"""Fuzzed payloads on the events topic become dead letters; valid ones beside them still land."""

from __future__ import annotations

import json
from itertools import count

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from backend.ingest.parse import Accepted, Message, Rejected, classify
from backend.ingest.store import BatchWriter
from backend.models import DeadLetter, DispenseEvent, utcnow
from firmware_agent.wire.payloads import PayloadError, parse_event
from tests.backend.conftest import register
from tests.backend.helpers import events_topic, fresh, vend

MACHINE = "test-001"
_seq = count(1)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _mutated_event(data: st.DataObject) -> bytes:
    """A valid event with one field dropped, retyped or added."""
    body = json.loads(vend(MACHINE, 1).to_bytes())
    key = data.draw(st.sampled_from(sorted(body)))
    action = data.draw(st.sampled_from(["drop", "retype", "extra"]))
    if action == "drop":
        del body[key]
    elif action == "retype":
        body[key] = data.draw(json_values)
    else:
        body[data.draw(st.text(min_size=1).filter(lambda k: k not in body))] = 1
    return json.dumps(body).encode()


def _junk(data: st.DataObject) -> bytes:
    choice = data.draw(st.sampled_from(["bytes", "json", "mutated"]))
    if choice == "bytes":
        return data.draw(st.binary(max_size=300))
    if choice == "json":
        return json.dumps(data.draw(json_values)).encode()
    return _mutated_event(data)


def _is_valid(raw: bytes) -> bool:
    try:
        parse_event(raw)
    except PayloadError:
        return False
    return True


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_batches_dead_letter_junk_and_keep_the_rest(
    engine: Engine, session: Session, data: st.DataObject
) -> None:
    register(session, MACHINE, count=10_000, capacity=10_000)
    raw_junk = [_junk(data) for _ in range(data.draw(st.integers(1, 8)))]
    bad = [raw for raw in raw_junk if not _is_valid(raw)]
    good = [vend(MACHINE, next(_seq)).to_bytes() for _ in range(data.draw(st.integers(1, 4)))]
    order = data.draw(st.permutations(bad + good))
    fresh(session)
    letters_before = session.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
    # A message is a dead letter once (digest of topic and payload): junk that
    # repeats, within this batch or from an earlier example, adds no row.
    known = set(session.execute(select(DeadLetter.payload)
                                .where(DeadLetter.topic == events_topic(MACHINE))).scalars())
    events_before = session.execute(select(func.count()).select_from(DispenseEvent)).scalar_one()
    with Session(engine) as writing:
        messages = [Message(events_topic(MACHINE), raw, utcnow()) for raw in order]
        result = BatchWriter(default_low_threshold=2).write(writing, messages, utcnow())
        writing.commit()
    fresh(session)
    letters = session.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
    events = session.execute(select(func.count()).select_from(DispenseEvent)).scalar_one()
    assert (result.dead_letters, result.stored) == (len(bad), len(good))
    assert letters - letters_before == len(set(bad) - known)
    assert events - events_before == len(good)


@given(st.binary(max_size=500), st.text(max_size=80))
def test_classify_never_raises(payload: bytes, topic: str) -> None:
    outcome = classify(Message(topic, payload, utcnow()))
    assert isinstance(outcome, Accepted | Rejected)
    if isinstance(outcome, Rejected):
        assert outcome.reason


def test_nan_in_command_detail_is_refused() -> None:
    raw = b'{"command_id":"c-1","ok":true,"detail":{"x":NaN}}'
    outcome = classify(Message("nx/v1/machines/test-001/cmd/result", raw, utcnow()))
    assert isinstance(outcome, Rejected)
    assert "NaN" in outcome.reason


def test_counters_beyond_64_bits_are_refused() -> None:
    raw = vend(MACHINE, 1).to_bytes().replace(b'"seq":1', b'"seq":' + str(2**64).encode())
    raw = raw.replace(f"{MACHINE}:1:1".encode(), f"{MACHINE}:1:{2**64}".encode())
    outcome = classify(Message(events_topic(MACHINE), raw, utcnow()))
    assert isinstance(outcome, Rejected)
    assert "64 bits" in outcome.reason
