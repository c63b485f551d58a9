"""Ingest watches the broker's dropped-message counter: a queue overflow is a metric and an alert.

Real processes: Mosquitto with a tiny ``max_queued_messages`` and ``$SYS`` every
second, ``nx-backend ingest`` (worker 0 holds the broker-watch role on SQLite),
a persistent subscriber that goes offline so that its queue overflows, and a
machine publishing. Before the role existed nothing in production read the
counter: the machine is acknowledged for every message, overflow or not.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from sqlmodel import Session, select

from backend.db import make_engine, migrate
from backend.models import Alert, AlertType
from backend.provisioning.drop_alert import BROKER_SUBJECT
from simulators.broker import MosquittoBroker, free_port
from tests.backend.conftest import register
from tests.backend.helpers import events_topic, vend
from tests.backend.procs import IngestProcess
from tests.broker.helpers import Probe
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES
from tests.waiting import wait_until

MACHINE = "test-001"
LIMIT, SENT = 20, 35
WAIT_S = 60.0


def _metric(url: str, name: str) -> float | None:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback
        for line in answer.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    return None


def _overflow_an_offline_session(broker: MosquittoBroker) -> None:
    """Leave a persistent session behind and publish more than its queue holds."""
    offline = Probe(broker.host, broker.port, BACKEND_USER, BACKEND_PASSWORD,
                    client_id="nx-offline-subscriber", clean_start=False, session_expiry_s=3600)
    assert not offline.connect().is_failure
    [granted] = offline.subscribe("nx/v1/machines/+/events")
    assert granted.value == 1
    offline.close()
    machine = Probe(broker.host, broker.port, MACHINE, TEST_MACHINES[MACHINE])
    assert not machine.connect().is_failure
    try:
        codes = machine.publish_many(events_topic(MACHINE),
                                     [vend(MACHINE, seq).to_bytes() for seq in range(1, SENT + 1)])
    finally:
        machine.close()
    assert not any(code.is_failure for code in codes)  # acknowledged, dropped or not


def test_a_queue_overflow_counts_in_ingest_metrics_and_opens_the_broker_alert(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'watch.db'}"
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        register(session, MACHINE, count=100, capacity=100)
        session.commit()
    metrics_port = free_port()
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    counter = "nx_ingest_broker_dropped_messages_total"
    with MosquittoBroker({BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES},
                         extra_config=f"max_queued_messages {LIMIT}\nsys_interval 1") as broker:
        ingest = IngestProcess(url, broker, extra_env={
            "NX_INGEST_METRICS_PORT": str(metrics_port)})
        try:
            ingest.wait_subscribed()
            wait_until(lambda: any("watching the broker's dropped-message counter" in line
                                   for line in ingest.lines), timeout=WAIT_S,
                       what="worker 0 taking the broker-watch role")
            assert _metric(metrics, counter) == 0
            _overflow_an_offline_session(broker)
            wait_until(lambda: _metric(metrics, counter) == SENT - LIMIT, timeout=WAIT_S,
                       what=f"{SENT - LIMIT} drops counted")

            def alerts() -> list[Alert]:
                with Session(engine) as session:
                    return list(session.exec(
                        select(Alert).where(Alert.subject == BROKER_SUBJECT)).all())

            wait_until(lambda: len(alerts()) == 1, timeout=WAIT_S, what="the broker alert")
        finally:
            ingest.terminate()
            engine.dispose()
    [alert] = alerts()
    assert (alert.type, alert.severity, alert.status) == (
        AlertType.DELIVERY_GAP.value, "critical", "open")
    assert alert.details["new_drops"] == SENT - LIMIT
    assert any("BROKER DROPPED 15 MESSAGES" in line for line in ingest.lines)
