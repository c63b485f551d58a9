"""Machines that come back from an outage and publish their buffered events at once.

Run as ``python tests/benchmarks/_burst_publisher.py HOST PORT FIRST LAST EVENTS WINDOW``:
connects machines burst-FIRST..burst-LAST (password burst-pw-N), each publishes EVENTS vend
events at QoS 1 with at most WINDOW unacknowledged, and prints one JSON line when every
publish is acknowledged.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from tests.backend.helpers import events_topic, vend
from tests.benchmarks._fleet import Item, print_result, publish_fleet

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

    def backlog(machine_id: str) -> Iterator[Item]:
        return ((events_topic(machine_id), vend(machine_id, s).to_bytes(), False)
                for s in range(1, int(events) + 1))

    machines = [(burst_id(n), burst_password(n)) for n in range(int(first), int(last) + 1)]
    print_result(publish_fleet(host, int(port), machines, backlog, window=int(window),
                               ack_timeout=ACK_TIMEOUT_S))


if __name__ == "__main__":
    main()
