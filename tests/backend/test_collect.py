"""Batch collection from the paho queue: bounded by size and time."""

from __future__ import annotations

import queue

from backend.ingest.mqtt import Delivery, retained_subscriptions, subscriptions
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


def test_every_worker_shares_the_events_and_the_retained_reader_reads_plain_topics() -> None:
    class _Broker:
        host, port = "127.0.0.1", 1

    settings = ingest_settings("sqlite://", _Broker())  # type: ignore[arg-type]
    shared = subscriptions(settings)
    assert "$share/nx-ingest/nx/v1/machines/+/events" in shared
    assert all(topic.startswith("$share/") for topic in shared)
    # MQTT v5 gives shared subscriptions no retained messages: the role holder
    # (backend/jobs) reads these on a plain subscription.
    assert retained_subscriptions() == ["nx/v1/machines/+/status", "nx/v1/machines/+/stock"]
