"""Batch collection from the paho queue: bounded by size and time."""

from __future__ import annotations

import queue

from backend.ingest.mqtt import Delivery, subscriptions
from backend.ingest.worker import collect_batch
from backend.models import utcnow
from tests.backend.conftest import ingest_settings


def _delivery(n: int) -> Delivery:
    return Delivery("nx/v1/machines/test-001/events", b"{}", utcnow(), n, 1, 0)


def test_empty_queue_gives_empty_batch() -> None:
    assert collect_batch(queue.Queue(), max_size=10, max_wait_s=0.01, linger_s=0.001,
                         poll_s=0.01) == []


def test_batch_stops_at_max_size_and_keeps_order() -> None:
    inbox: queue.Queue[Delivery] = queue.Queue()
    for n in range(25):
        inbox.put(_delivery(n))
    first = collect_batch(inbox, max_size=10, max_wait_s=1, linger_s=0.001, poll_s=0.01)
    second = collect_batch(inbox, max_size=100, max_wait_s=1, linger_s=0.001, poll_s=0.01)
    assert [d.mid for d in first] == list(range(10))
    assert [d.mid for d in second] == list(range(10, 25))


def test_worker_zero_also_reads_retained_topics() -> None:
    class _Broker:
        host, port = "127.0.0.1", 1

    settings = ingest_settings("sqlite://", _Broker())  # type: ignore[arg-type]
    zero, one = subscriptions(settings, 0), subscriptions(settings, 1)
    assert "$share/nx-ingest/nx/v1/machines/+/events" in zero
    assert "nx/v1/machines/+/status" in zero
    assert "nx/v1/machines/+/stock" in zero
    assert all(topic.startswith("$share/") for topic in one)
