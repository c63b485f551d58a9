"""Machines of a benchmark's publisher process: one thread and MQTT connection per machine.

Each machine publishes its messages at QoS 1 through ``PacedPublisher`` (at most
``window`` unacknowledged), optionally admitted one at a time by a shared
``Gate`` (the soak holds its fleet back while ingest is behind), and waits for
every PUBACK. ``publish_fleet`` returns the errors as data and ``print_result``
prints the one JSON line the benchmark reads, so a failure reaches the parent
test instead of a traceback on a child's stderr.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from tests.backend.helpers import PacedPublisher

Item = tuple[str, bytes, bool]
"""(topic, payload, retain) of one publish."""


class Gate(Protocol):
    """Admits publishes one by one; blocks while the fleet must wait."""

    def admit(self) -> None:
        """Return when one more message may be published."""


def publish_machine(host: str, port: int, machine_id: str, password: str,
                    items: Iterable[Item], *, window: int, ack_timeout: float,
                    gate: Gate | None = None) -> list[str]:
    """Publish ``items`` as one machine and wait for every PUBACK; return its errors."""
    try:
        publisher = PacedPublisher(host, port, machine_id, password, max_inflight=window,
                                   timeout=ack_timeout)
        try:
            sent = 0
            for topic, payload, retain in items:
                if gate is not None:
                    gate.admit()
                publisher.publish(topic, payload, retain=retain)
                sent += 1
            publisher.wait_acked(sent)
            return [f"{machine_id}: {publisher.refused[:3]}"] if publisher.refused else []
        finally:
            publisher.close()
    except Exception as exc:  # reported to the parent as data
        return [f"{machine_id}: {exc!r}"]


def publish_fleet(host: str, port: int, machines: Sequence[tuple[str, str]],
                  items: Callable[[str], Iterable[Item]], *, window: int,
                  ack_timeout: float, gate: Gate | None = None) -> list[str]:
    """Publish every (machine id, password)'s ``items(machine_id)`` concurrently."""
    errors: list[str] = []
    lock = threading.Lock()

    def run(machine_id: str, password: str) -> None:
        found = publish_machine(host, port, machine_id, password, items(machine_id),
                                window=window, ack_timeout=ack_timeout, gate=gate)
        with lock:
            errors.extend(found)

    threads = [threading.Thread(target=run, args=machine) for machine in machines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def print_result(errors: list[str], **extra: object) -> None:
    """Print the one JSON line the parent benchmark reads."""
    print(json.dumps({"finished": time.time(), "errors": errors, **extra}), flush=True)
