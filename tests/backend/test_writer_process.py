"""The writer in a child process: commits, survives its own death, stops when told."""

from __future__ import annotations

import itertools
import os
import signal
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from backend.config import Settings
from backend.ingest import IngestWorker
from backend.ingest.parse import Message
from backend.ingest.writer_process import CommitterProcess
from backend.models import DispenseEvent, Machine, utcnow
from simulators.broker import MosquittoBroker
from tests.backend.conftest import ingest_settings, register
from tests.backend.helpers import (
    WAIT_S,
    events_topic,
    fresh,
    publish_vends,
    vend,
)
from tests.waiting import wait_until


def _messages(machine_id: str, seqs: range) -> list[Message]:
    return [Message(events_topic(machine_id), vend(machine_id, s).to_bytes(), utcnow())
            for s in seqs]


def _stored(session: Session) -> int:
    fresh(session)
    return int(session.execute(select(func.count()).select_from(DispenseEvent)).scalar_one())


@pytest.fixture
def stopping() -> threading.Event:
    return threading.Event()


@pytest.fixture
def committer(migrated_url: str, stopping: threading.Event) -> Iterator[CommitterProcess]:
    settings = Settings(environment="test", database_url=migrated_url,
                        ingest_retry_backoff_s=0.05)
    process = CommitterProcess(settings, "test-writer", stopping)
    process.start()
    try:
        yield process
    finally:
        process.close()


def test_the_child_commits_a_batch_and_reports_it(
    committer: CommitterProcess, session: Session
) -> None:
    register(session, "test-001", count=100, capacity=100)
    result = committer.commit(_messages("test-001", range(1, 41)))
    assert result is not None
    assert (result.received, result.stored, result.duplicates) == (40, 40, 0)
    assert _stored(session) == 40
    again = committer.commit(_messages("test-001", range(31, 51)))
    assert again is not None
    assert (again.stored, again.duplicates) == (10, 10)
    assert _stored(session) == 50


@pytest.mark.allow_logged_errors
def test_a_killed_child_is_replaced_and_the_batch_retried(
    committer: CommitterProcess, session: Session
) -> None:
    register(session, "test-002", count=100, capacity=100)
    assert committer.commit(_messages("test-002", range(1, 11))) is not None
    process = committer._process
    assert process is not None
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    result = committer.commit(_messages("test-002", range(11, 21)))
    assert result is not None
    assert result.stored == 10
    assert committer.restarts == 1
    assert _stored(session) == 20


@pytest.mark.allow_logged_errors
def test_stop_ends_a_batch_that_waits_for_an_unreachable_database(
    tmp_path: Path, stopping: threading.Event
) -> None:
    # A SQLite file in a directory that does not exist cannot be opened: every try
    # is an OperationalError, as with a database server that is down.
    url = f"sqlite:///{tmp_path / 'missing' / 'nx.db'}"
    settings = Settings(environment="test", database_url=url, ingest_retry_backoff_s=0.05)
    process = CommitterProcess(settings, "test-writer", stopping)
    process.start()
    outcome: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(result=process.commit(_messages("test-003", range(1, 4)))))
    thread.start()
    child = process._process
    assert child is not None
    try:
        stopping.set()
        thread.join(30)
        assert not thread.is_alive(), "commit did not give up the batch after stop"
        assert outcome == {"result": None}
    finally:
        process.close()
    wait_until(lambda: not child.is_alive(), what="child stopped")
    assert child.exitcode == 0


def test_a_worker_with_its_writer_in_a_child_ingests_from_the_broker(
    migrated_url: str, mosquitto: MosquittoBroker, session: Session
) -> None:
    register(session, "test-004", count=300, capacity=300)
    worker = IngestWorker(ingest_settings(migrated_url, mosquitto, ingest_writer_process=True))
    worker.start()
    try:
        assert worker.wait_subscribed(WAIT_S)
        with pytest.raises(AttributeError):
            _ = worker.writer  # nothing to wrap here: it runs in the child
        publish_vends(mosquitto, "test-004", range(1, 201))
        wait_until(lambda: worker.metrics.committed._value.get() == 200,
                   what="200 events committed by the child")
        assert _stored(session) == 200
        child = worker.committer
        assert isinstance(child, CommitterProcess)
        assert child.restarts == 0
    finally:
        worker.stop()


@pytest.mark.allow_logged_errors
def test_batches_in_flight_when_the_child_dies_are_all_sent_again(
    committer: CommitterProcess, session: Session
) -> None:
    register(session, "test-005", count=100, capacity=100)
    process = committer._process
    assert process is not None
    assert process.pid is not None
    os.kill(process.pid, signal.SIGSTOP)  # hold it so that both batches are unanswered
    committer.submit(_messages("test-005", range(1, 21)))
    committer.submit(_messages("test-005", range(21, 41)))
    os.kill(process.pid, signal.SIGKILL)
    first, second = committer.result(), committer.result()
    assert first is not None
    assert second is not None
    assert (first.received, second.received) == (20, 20)
    assert first.stored + first.duplicates == 20
    assert second.stored + second.duplicates == 20
    assert committer.restarts == 1
    assert _stored(session) == 40


def test_upkeep_runs_under_a_stream_that_never_pauses(
    migrated_url: str, stopping: threading.Event, session: Session
) -> None:
    if not migrated_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL upkeep is the ingest-maintenance job, not the writer's")
    # A machine silent for an hour must be marked offline by the writer's upkeep while
    # another machine's batches follow each other with no pause the child could call idle.
    register(session, "test-001", count=100_000, capacity=100_000)
    register(session, "test-009")
    silent = session.get(Machine, "test-009")
    assert silent is not None
    silent.status, silent.last_seen = "online", utcnow() - timedelta(hours=1)
    session.commit()
    settings = Settings(environment="test", database_url=migrated_url,
                        ingest_maintenance_interval_s=0.2, offline_timeout_s=60)
    process = CommitterProcess(settings, "test-writer", stopping)
    process.start()
    seqs = itertools.count(1)

    def offline_after_another_batch() -> bool:
        # The next batch goes out as soon as the last is answered: never 0.2 s apart.
        seq = next(seqs)
        assert process.commit(_messages("test-001", range(seq, seq + 1)))
        fresh(session)
        machine = session.get(Machine, "test-009")
        return machine is not None and machine.status == "offline"

    try:
        wait_until(offline_after_another_batch, timeout=WAIT_S,
                   what="the silent machine marked offline mid-stream")
    finally:
        process.close()
