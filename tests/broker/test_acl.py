"""Authentication and ACL against a real Mosquitto started from broker_config/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.broker import MosquittoBroker
from tests.broker.helpers import Probe, wait_until
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES

NOT_AUTHORIZED = 135
BAD_USERNAME_OR_PASSWORD = 134
PACKET_TOO_LARGE = 149
A, B = "test-001", "test-002"
SHARED_EVENTS = "$share/nx-ingest/nx/v1/machines/+/events"


@pytest.fixture
def probes(mosquitto: MosquittoBroker) -> Iterator[list[Probe]]:
    """Collect the probes a test opens and close them afterwards."""
    opened: list[Probe] = []
    yield opened
    for probe in opened:
        probe.close()


def _probe(broker: MosquittoBroker, probes: list[Probe], user: str | None,
           password: str | None = None, **kwargs: object) -> Probe:
    probe = Probe(broker.host, broker.port, user, password, **kwargs)  # type: ignore[arg-type]
    probes.append(probe)
    return probe


def _connected(broker: MosquittoBroker, probes: list[Probe], user: str,
               password: str, **kwargs: object) -> Probe:
    probe = _probe(broker, probes, user, password, **kwargs)
    code = probe.connect()
    assert not code.is_failure, f"{user} was refused: {code}"
    return probe


def test_anonymous_client_is_refused(mosquitto: MosquittoBroker, probes: list[Probe]) -> None:
    code = _probe(mosquitto, probes, None).connect()
    assert code.is_failure
    assert code.value in {NOT_AUTHORIZED, BAD_USERNAME_OR_PASSWORD}


def test_wrong_password_is_refused(mosquitto: MosquittoBroker, probes: list[Probe]) -> None:
    code = _probe(mosquitto, probes, A, "not-the-password").connect()
    assert code.is_failure
    assert code.value in {NOT_AUTHORIZED, BAD_USERNAME_OR_PASSWORD}


def test_unknown_user_is_refused(mosquitto: MosquittoBroker, probes: list[Probe]) -> None:
    code = _probe(mosquitto, probes, "test-999", "whatever").connect()
    assert code.is_failure


def test_machine_publishes_under_its_own_topics(mosquitto: MosquittoBroker,
                                                probes: list[Probe]) -> None:
    backend = _connected(mosquitto, probes, BACKEND_USER, BACKEND_PASSWORD)
    assert [c.value for c in backend.subscribe("nx/v1/machines/+/events")] == [1]
    machine = _connected(mosquitto, probes, A, TEST_MACHINES[A])
    for channel in ("status", "events", "telemetry", "stock", "cmd/result"):
        code = machine.publish(f"nx/v1/machines/{A}/{channel}", b"{}")
        assert code is not None
        assert not code.is_failure, f"{channel}: {code}"
    [message] = backend.drain(1)
    assert message.topic == f"nx/v1/machines/{A}/events"


def test_machine_cannot_publish_as_another_machine(mosquitto: MosquittoBroker,
                                                   probes: list[Probe]) -> None:
    backend = _connected(mosquitto, probes, BACKEND_USER, BACKEND_PASSWORD)
    backend.subscribe("nx/v1/machines/+/events")
    machine_a = _connected(mosquitto, probes, A, TEST_MACHINES[A])
    for channel in ("status", "events", "telemetry", "stock", "cmd/result"):
        code = machine_a.publish(f"nx/v1/machines/{B}/{channel}", b'{"forged": true}')
        assert code is not None
        assert code.value == NOT_AUTHORIZED, f"{channel}: {code}"
    # The refused message went nowhere; the next legitimate one is the first seen.
    machine_a.publish(f"nx/v1/machines/{A}/events", b"real")
    [message] = backend.drain(1)
    assert message.topic == f"nx/v1/machines/{A}/events"
    assert message.payload == b"real"


def test_machine_cannot_send_commands(mosquitto: MosquittoBroker, probes: list[Probe]) -> None:
    machine_a = _connected(mosquitto, probes, A, TEST_MACHINES[A])
    for target in (A, B):
        code = machine_a.publish(f"nx/v1/machines/{target}/cmd", b"{}")
        assert code is not None
        assert code.value == NOT_AUTHORIZED


def test_machine_reads_only_its_own_commands(mosquitto: MosquittoBroker,
                                             probes: list[Probe]) -> None:
    # The dynamic-security plugin judges SUBSCRIBE (Mosquitto 2.0's acl_file did
    # not: it granted every filter and only the read check at delivery held):
    # everything but the machine's own cmd topic is refused in the SUBACK, and
    # nothing of anyone else's arrives.
    machine_a = _connected(mosquitto, probes, A, TEST_MACHINES[A])
    snooping = [f"nx/v1/machines/{B}/cmd", "nx/v1/machines/+/cmd", "#",
                "nx/v1/machines/+/events", "$SYS/#", SHARED_EVENTS, "$share/x/#"]
    for topic_filter in snooping:
        [refused] = machine_a.subscribe(topic_filter)
        assert refused.value == NOT_AUTHORIZED, f"{topic_filter}: {refused}"
    [code] = machine_a.subscribe(f"nx/v1/machines/{A}/cmd")
    assert code.value == 1  # granted QoS 1

    machine_b = _connected(mosquitto, probes, B, TEST_MACHINES[B])
    machine_b.publish(f"nx/v1/machines/{B}/events", b"b-event")
    backend = _connected(mosquitto, probes, BACKEND_USER, BACKEND_PASSWORD)
    backend.publish(f"nx/v1/machines/{B}/cmd", b"for-b")
    backend.publish(f"nx/v1/machines/{A}/cmd", b"for-a")
    # One connection delivers in order, so once "for-a" is in, anything of B's
    # that leaked would already be in.
    wait_until(lambda: any(m.payload == b"for-a" for m in list(machine_a.messages.queue)),
               message="A's own command")
    seen = {(m.topic, m.payload) for m in machine_a.drain(machine_a.messages.qsize())}
    assert seen == {(f"nx/v1/machines/{A}/cmd", b"for-a")}


def test_backend_cannot_publish_as_a_machine(mosquitto: MosquittoBroker,
                                             probes: list[Probe]) -> None:
    backend = _connected(mosquitto, probes, BACKEND_USER, BACKEND_PASSWORD)
    for channel in ("status", "events", "stock"):
        code = backend.publish(f"nx/v1/machines/{A}/{channel}", b"{}")
        assert code is not None
        assert code.value == NOT_AUTHORIZED


def test_backend_shared_subscription_splits_events(mosquitto: MosquittoBroker,
                                                   probes: list[Probe]) -> None:
    workers = [
        _connected(mosquitto, probes, BACKEND_USER, BACKEND_PASSWORD,
                   client_id=f"nx-ingest-{index}")
        for index in range(2)
    ]
    for worker in workers:
        [code] = worker.subscribe(SHARED_EVENTS)
        assert code.value == 1, f"shared subscription refused: {code}"
    count = 40
    machine = _connected(mosquitto, probes, A, TEST_MACHINES[A])
    codes = machine.publish_many(f"nx/v1/machines/{A}/events",
                                 [str(n).encode() for n in range(count)])
    assert not any(code.is_failure for code in codes)

    def total() -> int:
        return sum(worker.messages.qsize() for worker in workers)

    wait_until(lambda: total() >= count, message=f"{count} shared deliveries")
    shares = [[int(m.payload) for m in w.drain(w.messages.qsize())] for w in workers]
    assert sorted(shares[0] + shares[1]) == list(range(count))  # each once, none lost
    # Both members of the group got a share: the broker balances between them.
    assert all(shares), shares


def test_machine_cannot_join_the_ingest_share_group(mosquitto: MosquittoBroker,
                                                    probes: list[Probe]) -> None:
    """A machine in the ingest's share group would make the broker drop events.

    Mosquitto picks a share group's member before the read check, so with
    acl_file (which grants every SUBSCRIBE) one such member swallowed half the
    fleet's events, acknowledged and unlogged. The plugin refuses the
    subscription, so every event reaches the ingest.
    """
    backend = _connected(mosquitto, probes, BACKEND_USER, BACKEND_PASSWORD)
    [granted] = backend.subscribe(SHARED_EVENTS)
    assert granted.value == 1
    thief = _connected(mosquitto, probes, B, TEST_MACHINES[B])
    [refused] = thief.subscribe(SHARED_EVENTS)
    assert refused.value == NOT_AUTHORIZED
    machine_a = _connected(mosquitto, probes, A, TEST_MACHINES[A])
    count = 20
    codes = machine_a.publish_many(f"nx/v1/machines/{A}/events",
                                   [str(n).encode() for n in range(count)])
    assert not any(code.is_failure for code in codes)
    got = backend.drain(count)
    assert sorted(int(m.payload) for m in got) == list(range(count))
    assert thief.messages.empty()


def test_machine_cannot_use_another_client_id(mosquitto: MosquittoBroker,
                                              probes: list[Probe]) -> None:
    """A's password with B's or an ingest worker's client id is refused; nobody is dropped."""
    machine_b = _connected(mosquitto, probes, B, TEST_MACHINES[B])
    worker = _connected(mosquitto, probes, BACKEND_USER, BACKEND_PASSWORD,
                        client_id="nx-ingest-0", clean_start=False, session_expiry_s=600)
    for stolen_id in (B, "nx-ingest-0", "nx-backend", "auto-3f2a"):
        code = _probe(mosquitto, probes, A, TEST_MACHINES[A], client_id=stolen_id).connect()
        assert code.value == NOT_AUTHORIZED, f"client id {stolen_id!r}: {code}"
    # Both victims are still connected: they still get their messages.
    backend = _connected(mosquitto, probes, BACKEND_USER, BACKEND_PASSWORD)
    machine_b.subscribe(f"nx/v1/machines/{B}/cmd")
    backend.publish(f"nx/v1/machines/{B}/cmd", b"still-there")
    [message] = machine_b.drain(1)
    assert message.payload == b"still-there"
    worker.subscribe(SHARED_EVENTS)
    own = _connected(mosquitto, probes, A, TEST_MACHINES[A])
    own.publish(f"nx/v1/machines/{A}/events", b"via-a")
    [event] = worker.drain(1)
    assert event.payload == b"via-a"
    assert not machine_b.disconnected.is_set()
    assert not worker.disconnected.is_set()


def test_oversized_packet_disconnects_only_its_sender(mosquitto: MosquittoBroker,
                                                      probes: list[Probe]) -> None:
    bystander = _connected(mosquitto, probes, B, TEST_MACHINES[B])
    machine_a = _connected(mosquitto, probes, A, TEST_MACHINES[A])
    machine_a.client.publish(f"nx/v1/machines/{A}/events", b"x" * 100_000, qos=0)
    wait_until(machine_a.disconnected.is_set, message="oversized sender disconnected")
    assert machine_a.disconnect_reason is not None
    assert machine_a.disconnect_reason.value == PACKET_TOO_LARGE
    machine_a.client.loop_stop()  # do not let paho reconnect during the rest of the test
    code = bystander.publish(f"nx/v1/machines/{B}/events", b"{}")
    assert code is not None
    assert not code.is_failure
