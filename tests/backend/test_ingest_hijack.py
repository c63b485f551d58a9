"""One stolen machine credential cannot divert or drop the fleet's dispenses (issue 12).

Machine A, with its own credential, joins the ingest's share group, subscribes
to ``#`` and presents B's and the ingest worker's client ids while B publishes
1,000 dispenses to the real ingest worker. Against every shipped broker config
that a test can start: all 1,000 stored, A receives nothing, neither B nor the
worker is ever disconnected. On the password_file + acl_file configs shipped
before, the worker stored 377 (dev) and 418 (production) of the 1,000: A's
share-group membership made the broker drop events and A's use of the
worker's client id threw it into a reconnect loop.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from backend.ingest import IngestWorker
from backend.models import DispenseEvent
from backend.provisioning import ca_store
from simulators.broker import MosquittoBroker
from tests.backend.conftest import ingest_settings, register
from tests.backend.helpers import WAIT_S, events_topic, fresh, vend
from tests.broker.helpers import Probe, TlsFiles
from tests.broker.production import start_production_broker
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES
from tests.waiting import wait_until

A, B = "test-001", "test-002"
COUNT = 1_000
NOT_AUTHORIZED = 135
INGEST_ID = "nx-ingest-0"
SHARED_EVENTS = "$share/nx-ingest/nx/v1/machines/+/events"


@dataclass
class Target:
    """A running broker and how the attacker, B and the ingest reach it."""

    broker: MosquittoBroker
    service_port: int
    attacks: list[Callable[[str, bool], Probe]]
    """Ways for A to connect, given a client id and clean start (one per listener)."""


def _dev() -> Iterator[Target]:
    broker = MosquittoBroker({BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES}).start()
    try:
        def password(client_id: str, clean: bool) -> Probe:
            return Probe(broker.host, broker.port, A, TEST_MACHINES[A], client_id=client_id,
                         clean_start=clean)
        yield Target(broker, broker.port, [password])
    finally:
        broker.cleanup()


def _production() -> Iterator[Target]:
    prod = start_production_broker({BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES})
    bundle = ca_store.issue_client(prod.ca_dir, A, prod.clients_dir / A)
    ca = str(prod.ca_dir / "ca.crt")
    host = prod.broker.host
    try:
        def certificate(client_id: str, clean: bool) -> Probe:
            return Probe(host, prod.machine_port, None, None, client_id=client_id,
                         clean_start=clean,
                         tls=TlsFiles(ca, str(bundle.cert_file), str(bundle.key_file)))

        def password_tls(client_id: str, clean: bool) -> Probe:
            return Probe(host, prod.service_tls_port, A, TEST_MACHINES[A],
                         client_id=client_id, clean_start=clean, tls=TlsFiles(ca))

        def password_loopback(client_id: str, clean: bool) -> Probe:
            return Probe(host, prod.loopback_port, A, TEST_MACHINES[A], client_id=client_id,
                         clean_start=clean)
        yield Target(prod.broker, prod.loopback_port,
                     [certificate, password_tls, password_loopback])
    finally:
        prod.broker.cleanup()
        shutil.rmtree(prod.ca_dir.parent, ignore_errors=True)


@pytest.fixture(params=["dev", "production"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """Each shipped broker config, running (the plugin's runtime API is in test_dynsec.py)."""
    yield from (_dev() if request.param == "dev" else _production())


def _attack(target: Target, opened: list[Probe]) -> list[str]:
    """Everything A can try with its own credential, on every listener that takes it.

    Returns what the broker let through; the test checks the outcome first.
    """
    granted: list[str] = []
    for connect in target.attacks:
        member = connect(A, True)
        opened.append(member)
        if member.connect().is_failure:
            continue  # a listener that does not take this credential at all
        for topic_filter in (SHARED_EVENTS, "$share/nx-ingest/#", "#", "nx/v1/machines/+/events"):
            [code] = member.subscribe(topic_filter)
            if code.value != NOT_AUTHORIZED:
                granted.append(f"subscribe {topic_filter}: {code}")
        for stolen in (B, INGEST_ID):
            # Refused outright, or (certificate listener) renamed to A's own id.
            impostor = connect(stolen, True)
            opened.append(impostor)
            if not impostor.connect().is_failure:
                [code] = impostor.subscribe(SHARED_EVENTS)
                if code.value != NOT_AUTHORIZED:
                    granted.append(f"client id {stolen}, then {SHARED_EVENTS}: {code}")
    return granted


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_stolen_machine_credential_diverts_nothing(
    target: Target, migrated_url: str, session: Session, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="backend.ingest.mqtt")
    register(session, B, count=COUNT, capacity=COUNT)
    settings = ingest_settings(migrated_url, target.broker, mqtt_port=target.service_port)
    worker = IngestWorker(settings)
    worker.start()
    opened: list[Probe] = []
    machine_b = Probe(target.broker.host, target.service_port, B, TEST_MACHINES[B])
    try:
        assert worker.wait_subscribed(WAIT_S)
        assert not machine_b.connect().is_failure
        codes: list[object] = []
        publishing = threading.Thread(target=lambda: codes.extend(machine_b.publish_many(
            events_topic(B), [vend(B, seq).to_bytes() for seq in range(1, COUNT + 1)],
            window=20)))
        publishing.start()
        granted = _attack(target, opened)
        publishing.join(120)
        assert len(codes) == COUNT
        stored = select(func.count()).select_from(DispenseEvent).where(
            DispenseEvent.machine_id == B)  # type: ignore[arg-type]

        def stored_count() -> int:
            fresh(session)
            return int(session.execute(stored).scalar_one())
        with contextlib.suppress(AssertionError):  # the count below says what is missing
            wait_until(lambda: stored_count() >= COUNT, WAIT_S, what=f"{COUNT} stored")
        assert stored_count() == COUNT, f"stored {stored_count()} of {COUNT} dispenses"
        assert all(probe.messages.empty() for probe in opened)  # A received nothing
        assert not machine_b.disconnected.is_set()
        connects = [r for r in caplog.records if "connected to" in r.getMessage()]
        drops = [r for r in caplog.records if r.levelno >= logging.WARNING]
        # The worker never dropped: each of its clients (the shared subscriptions and
        # the retained reader) connected once.
        clients = Counter(r.getMessage().split()[0] for r in connects)
        assert set(clients.values()) == {1}, [r.getMessage() for r in connects]
        assert not drops, [r.getMessage() for r in drops]
        assert not granted
    finally:
        for probe in opened:
            probe.close()
        machine_b.close()
        worker.stop()
