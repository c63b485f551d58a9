"""Prometheus metrics, on a registry per app or worker so tests do not collide."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class IngestMetrics:
    """Counters and gauges of one ingest worker."""

    messages_in: Counter
    committed: Counter
    duplicates: Counter
    dead_letters: Counter
    dead_letters_dropped: Counter
    batch_seconds: Histogram
    batch_retries: Counter
    inbox_depth: Gauge
    inbox_blocked_seconds: Counter
    backpressure_episodes: Counter
    broker_dropped: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IngestMetrics:
        """Register the ingest metrics on ``registry``."""
        return cls(
            messages_in=Counter(
                "nx_ingest_messages_in", "MQTT messages received", registry=registry
            ),
            committed=Counter(
                "nx_ingest_messages_committed",
                "Messages stored by a committed transaction",
                registry=registry,
            ),
            duplicates=Counter(
                "nx_ingest_duplicates", "Events already stored, dropped", registry=registry
            ),
            dead_letters=Counter(
                "nx_ingest_dead_letters", "Messages stored as dead letters", registry=registry
            ),
            dead_letters_dropped=Counter(
                "nx_ingest_dead_letters_dropped",
                "Malformed messages over their machine's dead-letter quota: counted, not stored",
                registry=registry,
            ),
            batch_seconds=Histogram(
                "nx_ingest_batch_seconds",
                "Time to validate and commit one batch",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                registry=registry,
            ),
            batch_retries=Counter(
                "nx_ingest_batch_retries",
                "Batches retried after a database error",
                registry=registry,
            ),
            # The worker points this at its inbox (set_function): read at scrape time.
            inbox_depth=Gauge(
                "nx_ingest_inbox_depth",
                "Messages received and waiting for the writer",
                registry=registry,
            ),
            inbox_blocked_seconds=Counter(
                "nx_ingest_inbox_blocked_seconds",
                "Time paho's network thread waited for room in a full inbox",
                registry=registry,
            ),
            backpressure_episodes=Counter(
                "nx_ingest_backpressure_episodes",
                "Times the inbox filled up and the worker stopped reading from the broker",
                registry=registry,
            ),
            # Counted by the worker holding the broker-watch role (backend/ingest/broker_watch.py);
            # alert on any increase: those messages were acknowledged to machines and lost.
            broker_dropped=Counter(
                "nx_ingest_broker_dropped_messages",
                "Messages the broker dropped from a full client queue ($SYS counter increases)",
                registry=registry,
            ),
        )
