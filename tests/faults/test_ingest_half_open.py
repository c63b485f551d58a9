"""A link that loses ingest's packets but still brings the broker's: ingest gives it up itself.

paho-mqtt 2.2 keeps a connection as long as bytes arrive, even with its PINGREQ
unanswered, so before the link probe (backend/ingest/link_probe.py) the
retained reader, fed a stock snapshot every half second, outlived any stall
until the broker dropped it (docs/faults.md). Here the keepalive is 30 s, so
Mosquitto would wait at least 45 s; the probe's 2 s must end both of ingest's
connections from ingest's side within a few seconds, and ingest must come back
when the link heals.

Real processes: Mosquitto, the fault proxy, ``nx-backend ingest`` (SQLite) and
a machine publishing retained stock straight to the broker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from backend.db import make_engine, migrate
from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel, machine_topic
from simulators.broker import MosquittoBroker
from tests.backend.conftest import register
from tests.backend.procs import IngestProcess
from tests.broker.helpers import Probe
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES
from tests.faultproxy import Direction, End, FaultProxy, Mode
from tests.faults.rig import noticed
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

MACHINE = "test-001"
KEEPALIVE_S = 30
PROBE_S = 2.0
SNAPSHOT_EVERY_S = 0.5
NOTICE_BOUND_S = 3 * PROBE_S + 4.0
"""A probe goes out every PROBE_S / 2 and is given up after PROBE_S (at most 1.5 PROBE_S
from the stall), plus the watch's check step and room for a loaded machine."""
START_S = 120.0


def _snapshot(revision: int) -> bytes:
    slot = payloads.SlotStock(slot=1, product="naloxone-nasal-4mg", count=8, capacity=10)
    return payloads.StockSnapshot(machine_id=MACHINE, boot_id=1, revision=revision,
                                  device_time=datetime.now(UTC), slots=(slot,)).to_bytes()


@pytest.fixture
def snapshots(broker: MosquittoBroker) -> Iterator[None]:
    """A machine publishing a retained stock snapshot every SNAPSHOT_EVERY_S, straight in."""
    machine = Probe(broker.host, broker.port, MACHINE, TEST_MACHINES[MACHINE])
    assert not machine.connect().is_failure
    stop = threading.Event()

    def run() -> None:
        revision = 0
        while not stop.wait(SNAPSHOT_EVERY_S):
            revision += 1
            machine.client.publish(machine_topic(MACHINE, Channel.STOCK), _snapshot(revision),
                                   qos=1, retain=True)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)
    machine.close()


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker({BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES}) as running:
        yield running


def _subscribed(ingest: IngestProcess) -> int:
    return sum("subscribed to" in line for line in ingest.lines)


def test_ingest_gives_up_a_link_that_only_brings_messages(
        broker: MosquittoBroker, snapshots: None, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'half-open.db'}"
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        register(session, MACHINE)
        session.commit()
    engine.dispose()
    with FaultProxy(broker.host, broker.port) as proxy:
        # Only ingest's two connections on the link: the broker watch (worker 0) is off here.
        ingest = IngestProcess(url, broker, extra_env={
            "NX_MQTT_PORT": str(proxy.port), "NX_MQTT_KEEPALIVE_S": str(KEEPALIVE_S),
            "NX_INGEST_LINK_PROBE_S": str(PROBE_S), "NX_INGEST_BROKER_WATCH": "false"})
        try:
            wait_until(lambda: _subscribed(ingest) >= 2 or ingest.process.poll() is not None,
                       timeout=START_S, what="both ingest subscriptions")
            assert ingest.process.poll() is None, "".join(ingest.lines)
            live = proxy.open_ids()
            assert len(live) == 2, live
            started = time.monotonic()
            proxy.set_mode(Mode.HALF_OPEN, stalled=Direction.TO_SERVER)
            wait_until(lambda: noticed(proxy, live, started, End.CLIENT, End.SERVER) is not None,
                       timeout=NOTICE_BOUND_S * 2, what="both stalled connections given up")
            by_ingest = noticed(proxy, live, started, End.CLIENT)
            subscribed_before = _subscribed(ingest)
            proxy.heal()
            wait_until(lambda: _subscribed(ingest) >= subscribed_before + 2, timeout=START_S,
                       what="ingest subscribed again after the heal")
        finally:
            ingest.terminate()  # and nothing logged at ERROR: not taken for a takeover
    # Ingest, not the broker (which would wait 1.5 x 30 s), gave both up, within the bound.
    assert by_ingest is not None, proxy.closures
    assert by_ingest <= NOTICE_BOUND_S, by_ingest
    assert sum("giving the connection up" in line for line in ingest.lines) >= 2
