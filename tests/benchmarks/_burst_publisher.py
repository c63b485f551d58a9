"""Machines that come back from an outage and publish their buffered events at once.

Run as ``python tests/benchmarks/_burst_publisher.py HOST PORT FIRST LAST EVENTS WINDOW``:
connects machines burst-FIRST..burst-LAST (password burst-pw-N), each publishes EVENTS vend
events at QoS 1 with at most WINDOW unacknowledged, and prints one JSON line when every
publish is acknowledged.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from tests.backend.helpers import PacedPublisher, events_topic, vend

ACK_TIMEOUT_S = 900.0
"""A broker busy with a 500,000-message backlog answers slowly; an agent would wait too."""


def burst_id(n: int) -> str:
    """Return the machine id of burst machine ``n``."""
    return f"burst-{n:04d}"


def burst_password(n: int) -> str:
    """Return the broker password of burst machine ``n``."""
    return f"burst-pw-{n:04d}"


def main() -> None:
    """Publish every machine's backlog concurrently."""
    host, port, first, last, events, window = sys.argv[1:7]
    errors: list[str] = []

    def run(n: int) -> None:
        machine_id = burst_id(n)
        try:
            publisher = PacedPublisher(host, int(port), machine_id, burst_password(n),
                                       max_inflight=int(window), timeout=ACK_TIMEOUT_S)
            try:
                publisher.publish_all((events_topic(machine_id), vend(machine_id, s).to_bytes())
                                      for s in range(1, int(events) + 1))
                if publisher.refused:
                    errors.append(f"{machine_id}: {publisher.refused[:3]}")
            finally:
                publisher.close()
        except Exception as exc:  # reported to the parent as data
            errors.append(f"{machine_id}: {exc!r}")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(int(first), int(last) + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"finished": time.time(), "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
