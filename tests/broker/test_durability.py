"""What the broker acknowledged survives kill -9; what overflows a queue is reported."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from backend.config import Settings
from backend.db import make_engine, migrate
from backend.models import Alert, AlertType
from backend.provisioning.broker_monitor import BrokerMonitor, DropReport
from backend.provisioning.drop_alert import BROKER_SUBJECT, make_drop_alert_handler
from simulators.broker import MosquittoBroker
from tests.broker.helpers import Probe, wait_saved, wait_until
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES

USERS = {BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES}
EVENTS = "nx/v1/machines/test-001/events"
INGEST_ID = "nx-ingest-durability"
SESSION_EXPIRY_S = 3600


def _ingest(broker: MosquittoBroker) -> Probe:
    """An ingest-like persistent session: stable id, clean_start off, session kept."""
    return Probe(broker.host, broker.port, BACKEND_USER, BACKEND_PASSWORD,
                 client_id=INGEST_ID, clean_start=False, session_expiry_s=SESSION_EXPIRY_S)


def _register_then_go_offline(broker: MosquittoBroker) -> None:
    ingest = _ingest(broker)
    assert not ingest.connect().is_failure
    [granted] = ingest.subscribe("nx/v1/machines/+/events")
    assert granted.value == 1
    ingest.close()


def _publish_acknowledged(broker: MosquittoBroker, count: int) -> None:
    machine = Probe(broker.host, broker.port, "test-001", TEST_MACHINES["test-001"])
    assert not machine.connect().is_failure
    try:
        codes = machine.publish_many(EVENTS, [f"{n:06d}".encode() for n in range(count)])
    finally:
        machine.close()
    assert len(codes) == count
    assert not any(code.is_failure for code in codes)


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """The dev broker (persistence, save on every change)."""
    with MosquittoBroker(USERS) as running:
        yield running


def test_acknowledged_messages_survive_kill_9(broker: MosquittoBroker) -> None:
    count = 300
    _register_then_go_offline(broker)
    _publish_acknowledged(broker, count)
    wait_saved(broker.data_dir, f"{count - 1:06d}".encode())
    broker.kill()  # SIGKILL: no chance to save on the way out
    broker.start()
    ingest = _ingest(broker)
    assert not ingest.connect().is_failure
    try:
        received = ingest.drain(count, timeout=60)
    finally:
        ingest.close()
    assert sorted(int(m.payload) for m in received) == list(range(count))


def test_queue_overflow_is_counted_and_reported(
        caplog: pytest.LogCaptureFixture) -> None:
    limit, sent = 50, 80
    extra = f"max_queued_messages {limit}\nsys_interval 1\n"
    reports: list[DropReport] = []
    got_report = threading.Event()

    def on_drop(report: DropReport) -> None:
        reports.append(report)
        got_report.set()

    with MosquittoBroker(USERS, extra_config=extra) as broker:
        monitor = BrokerMonitor(host=broker.host, port=broker.port, username=BACKEND_USER,
                                password=BACKEND_PASSWORD, on_drop=on_drop)
        monitor.start()
        try:
            _register_then_go_offline(broker)
            with caplog.at_level(logging.WARNING, logger="backend.provisioning"):
                # The publisher is acknowledged for every message, overflow or not:
                # only the broker's counter knows.
                _publish_acknowledged(broker, sent)
                wait_until(lambda: sum(r.new_drops for r in reports) >= sent - limit,
                           timeout=30, message="drop report")
        finally:
            monitor.stop()
        ingest = _ingest(broker)
        assert not ingest.connect().is_failure
        try:
            delivered = ingest.drain(limit, timeout=30)
            # Nothing beyond the queue limit arrives; probe with a marker that
            # queues behind anything still pending.
            marker = Probe(broker.host, broker.port, "test-001", TEST_MACHINES["test-001"])
            marker.connect()
            marker.publish(EVENTS, b"marker")
            marker.close()
            [last] = ingest.drain(1, timeout=30)
        finally:
            ingest.close()
    assert got_report.is_set()
    assert sum(r.new_drops for r in reports) == sent - limit
    assert last.payload == b"marker"
    assert len(delivered) == limit
    assert any("BROKER DROPPED" in rec.getMessage() and str(sent - limit) in rec.getMessage()
               for rec in caplog.records)


def test_queue_overflow_opens_a_delivery_gap_alert(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'naloxnet.db'}"
    migrate(url)
    on_drop = make_drop_alert_handler(Settings(database_url=url))
    limit, sent = 20, 35
    with MosquittoBroker(USERS, extra_config=f"max_queued_messages {limit}\nsys_interval 1\n"
                         ) as broker:
        monitor = BrokerMonitor(host=broker.host, port=broker.port, username=BACKEND_USER,
                                password=BACKEND_PASSWORD, on_drop=on_drop)
        monitor.start()
        engine = make_engine(url)
        try:
            _register_then_go_offline(broker)
            _publish_acknowledged(broker, sent)

            def alerts() -> list[Alert]:
                with Session(engine) as session:
                    return list(session.exec(select(Alert).where(
                        Alert.subject == BROKER_SUBJECT)).all())

            wait_until(lambda: len(alerts()) == 1, timeout=30, message="overflow alert")
        finally:
            monitor.stop()
            engine.dispose()
    [alert] = alerts()
    assert alert.type == AlertType.DELIVERY_GAP.value
    assert alert.status == "open"
    assert alert.severity == "critical"
    assert alert.details["total"] == sent - limit
    assert f"dropped {sent - limit} acknowledged messages" in alert.message
