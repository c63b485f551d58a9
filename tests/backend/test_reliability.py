"""Nothing lost, nothing doubled: kill -9 of an ingest worker, and two workers sharing the load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from backend.ingest import IngestWorker
from backend.models import DispenseEvent, Slot
from simulators.broker import MosquittoBroker
from tests.backend.conftest import ingest_settings, register
from tests.backend.helpers import WAIT_S, events_topic, fresh, machine_publisher, vend, wait_until
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER

MACHINES = {f"rel-{n:03d}": f"rel-pw-{n:03d}" for n in range(1, 51)}
EVENTS_PER_MACHINE = 40
START_COUNT = 100
TOTAL = len(MACHINES) * EVENTS_PER_MACHINE
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker_users() -> dict[str, str]:
    """The backend and 50 simulated machines."""
    return {BACKEND_USER: BACKEND_PASSWORD, **MACHINES}


def _stored(session: Session) -> int:
    fresh(session)
    return int(session.execute(select(func.count()).select_from(DispenseEvent)).scalar_one())


def _assert_exactly_once(session: Session) -> None:
    fresh(session)
    assert _stored(session) == TOTAL
    keys = session.execute(
        select(func.count()).select_from(
            select(DispenseEvent.machine_id, DispenseEvent.boot_id, DispenseEvent.seq)
            .distinct().subquery())
    ).scalar_one()
    assert keys == TOTAL
    # Stock was applied exactly once per event too.
    counts = set(session.execute(select(Slot.count)).scalars())
    assert counts == {START_COUNT - EVENTS_PER_MACHINE}


class Fleet:
    """50 machines publishing their events concurrently, each paced by PUBACKs."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.broker = broker
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(m,), daemon=True)
                        for m in MACHINES]

    def _run(self, machine_id: str) -> None:
        try:
            publisher = machine_publisher(self.broker, machine_id, MACHINES[machine_id])
            try:
                publisher.publish_all(
                    (events_topic(machine_id), vend(machine_id, seq).to_bytes())
                    for seq in range(1, EVENTS_PER_MACHINE + 1))
            finally:
                publisher.close()
        except BaseException as exc:  # surfaced by join()
            self.errors.append(exc)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT_S * 2)
        assert not self.errors, self.errors
        assert not any(t.is_alive() for t in self.threads), "a publisher did not finish"


class IngestProcess:
    """``nx-backend ingest`` in a child process, watched through its log."""

    def __init__(self, url: str, broker: MosquittoBroker, worker: int = 0) -> None:
        env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url,
               "NX_MQTT_HOST": broker.host, "NX_MQTT_PORT": str(broker.port),
               "NX_MQTT_PASSWORD": BACKEND_PASSWORD, "NX_INGEST_RECONNECT_MIN_S": "1",
               "NX_INGEST_RECONNECT_MAX_S": "2"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from backend.cli import main; main()", "ingest",
             "--worker", str(worker)],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_subscribed(self) -> None:
        wait_until(lambda: any("subscribed to" in line for line in self.lines)
                   or self.process.poll() is not None, what="ingest subscription")
        assert self.process.poll() is None, "".join(self.lines)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(WAIT_S)

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(WAIT_S)
        self._reader.join(WAIT_S)
        errors = [line for line in self.lines if " ERROR " in line]
        assert not errors, "".join(errors)


@pytest.fixture
def fleet_db(migrated_url: str, session: Session) -> str:
    for machine_id in MACHINES:
        register(session, machine_id, count=START_COUNT, capacity=START_COUNT, threshold=2)
    return migrated_url


def test_kill_9_mid_stream_loses_and_doubles_nothing(
    fleet_db: str, mosquitto: MosquittoBroker, session: Session
) -> None:
    first = IngestProcess(fleet_db, mosquitto)
    try:
        first.wait_subscribed()
        fleet = Fleet(mosquitto)
        fleet.start()
        wait_until(lambda: _stored(session) >= TOTAL // 5, what="a fifth of the stream")
        first.kill()  # mid-batch, mid-stream: whatever was not committed is not acked
    finally:
        if first.process.poll() is None:
            first.kill()
    stored_at_kill = _stored(session)
    assert stored_at_kill < TOTAL, "the stream finished before the kill; make it longer"
    fleet.join()  # the broker queues the rest for the worker's persistent session
    second = IngestProcess(fleet_db, mosquitto)
    try:
        second.wait_subscribed()
        wait_until(lambda: _stored(session) >= TOTAL, timeout=WAIT_S * 4,
                   what=f"{TOTAL} events after restart")
    finally:
        second.terminate()
    _assert_exactly_once(session)


def test_two_workers_on_the_shared_subscription_store_each_event_once(
    fleet_db: str, mosquitto: MosquittoBroker, session: Session
) -> None:
    workers = [IngestWorker(ingest_settings(fleet_db, mosquitto), index) for index in (0, 1)]
    try:
        for worker in workers:
            worker.start()
            assert worker.wait_subscribed(WAIT_S)
        fleet = Fleet(mosquitto)
        fleet.start()
        fleet.join()
        wait_until(lambda: _stored(session) >= TOTAL, timeout=WAIT_S * 4,
                   what=f"{TOTAL} events from two workers")
    finally:
        for worker in workers:
            worker.stop()
    _assert_exactly_once(session)
    shares = [int(w.metrics.messages_in._value.get()) for w in workers]
    assert all(share > 0 for share in shares), f"one worker got nothing: {shares}"
    assert sum(shares) >= TOTAL
