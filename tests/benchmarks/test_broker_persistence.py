"""Benchmark: what Mosquitto 2.0's save-on-every-change persistence costs.

The production config saves the store after every change so that a crash
loses nothing acknowledged; Mosquitto 2.0 rewrites the whole store on each
save, so the cost grows with what is queued for an offline subscriber (the
ingest during a backend outage). Measured here: QoS 1 publish throughput,
paced by PUBACKs, with the subscriber online (queue near empty) and offline
(queue growing), saving on every change and every 1,000 changes.
Prints the figures and writes bench-results/broker_persistence.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from simulators.broker import MosquittoBroker
from tests.broker.helpers import Probe
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "broker_persistence.json"
USERS = {BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES}
PAYLOAD = b"x" * 300  # about the size of a dispense event
WINDOW = 100  # unacknowledged publishes at a time, like the agent's max_inflight
CASES = [  # (autosave_interval, subscriber online, messages)
    (1, True, 8000),
    (1000, True, 8000),
    (1, False, 2000),
    (1, False, 8000),
    (1000, False, 8000),
]


def _run(interval: int, online: bool, count: int) -> float:
    with MosquittoBroker(USERS, extra_config=f"autosave_interval {interval}") as broker:
        ingest = Probe(broker.host, broker.port, BACKEND_USER, BACKEND_PASSWORD,
                       client_id="bench-ingest", clean_start=False, session_expiry_s=3600)
        ingest.connect()
        ingest.subscribe("nx/v1/machines/+/events")
        if not online:
            ingest.close()
        machine = Probe(broker.host, broker.port, "test-001", TEST_MACHINES["test-001"])
        machine.connect()
        started = time.perf_counter()
        codes = machine.publish_many("nx/v1/machines/test-001/events", [PAYLOAD] * count,
                                     window=WINDOW, timeout=900)
        elapsed = time.perf_counter() - started
        machine.close()
        if online:
            ingest.drain(count, timeout=120)
            ingest.close()
        if len(codes) != count or any(code.is_failure for code in codes):
            raise AssertionError("a publish was not acknowledged")
    return count / elapsed


def test_broker_persistence_cost() -> None:
    rows = []
    for interval, online, count in CASES:
        rate = _run(interval, online, count)
        rows.append({"autosave_interval": interval, "subscriber_online": online,
                     "messages": count, "msgs_per_s": round(rate)})
        print(f"autosave_interval={interval:<5} subscriber "
              f"{'online ' if online else 'offline'} {count:>6} msgs: {rate:8.0f} msg/s")
    slow = next(r for r in rows if r["autosave_interval"] == 1 and not r["subscriber_online"]
                and r["messages"] == 8000)
    fast = next(r for r in rows if r["autosave_interval"] == 1000
                and not r["subscriber_online"])
    ratio = fast["msgs_per_s"] / max(slow["msgs_per_s"], 1)
    print(f"saving every change is {ratio:.0f}x slower than every 1,000 with 8,000 queued")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"cases": rows, "every_change_slowdown_8000_queued": ratio},
                                  indent=2), encoding="utf-8")
    assert all(r["msgs_per_s"] > 0 for r in rows)
