"""The ingest soak's fleet: machines publishing a day-to-day mix, paced by ingest's progress.

Run as ``python tests/benchmarks/_soak_publisher.py HOST PORT MACHINES PER_MACHINE WINDOW
METRICS_URL AHEAD QUIET_EVERY QUIET_S``: machines soak-001..soak-MACHINES (password
soak-pw-NNN) each publish PER_MACHINE messages at QoS 1 with at most WINDOW
unacknowledged. The fleet as a whole stays at most AHEAD messages ahead of what the
ingest worker at METRICS_URL has finished with (``_ingest_progress.ProgressGate``), so
the broker's queue for ingest stays short, and every QUIET_EVERY messages it lets the
worker finish and idle for QUIET_S.
In every 100 messages of a machine: 93 vends, 2 restocks, a door opened and closed, a
heartbeat, a retained stock snapshot and a retained status; every 10,000th message is
malformed (a dead letter). Device time advances 30 s a message, so 100,000 messages are
about a month of a busy machine. Prints one JSON line when every publish is acknowledged.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel, machine_topic
from tests.benchmarks._fleet import Item, print_result, publish_fleet
from tests.benchmarks._ingest_progress import ProgressGate, metrics_progress

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(seconds=30)
CYCLE = 100
MALFORMED_EVERY = 10_000
SLOTS = 4
ACK_TIMEOUT_S = 900.0


def soak_machine(n: int) -> str:
    """Return the machine id of soak machine ``n``."""
    return f"soak-{n:03d}"


def soak_password(n: int) -> str:
    """Return the broker password of soak machine ``n``."""
    return f"soak-pw-{n:03d}"


def messages(machine_id: str, total: int) -> Iterator[Item]:
    """Yield (topic, payload, retain) for ``total`` messages of one machine."""
    events = machine_topic(machine_id, Channel.EVENTS)
    ids = {"machine_id": machine_id, "boot_id": 1}
    seq = 0
    counts = dict.fromkeys(range(1, SLOTS + 1), 500)
    for n in range(total):
        at = T0 + STEP * n
        phase = n % CYCLE
        if n % MALFORMED_EVERY == MALFORMED_EVERY - 1:
            yield events, b'{"kind": "vend", "truncated', False
            continue
        seq += 1
        slot = seq % SLOTS + 1
        if phase < 93:
            counts[slot] -= 1
            event: payloads._EventBase = payloads.VendEvent(
                **ids, seq=seq, device_time=at, slot=slot, result=payloads.VendResult.OK,
                drop_confirmed=True)
        elif phase < 95:
            counts[slot] = 500
            event = payloads.RestockEvent(**ids, seq=seq, device_time=at, slot=slot, count=500)
        elif phase < 97:
            state = payloads.DoorState.OPEN if phase == 95 else payloads.DoorState.CLOSED
            event = payloads.DoorEvent(**ids, seq=seq, device_time=at, state=state)
        elif phase == 97:
            seq -= 1  # not an event: no seq
            yield (machine_topic(machine_id, Channel.TELEMETRY),
                   payloads.Telemetry(**ids, device_time=at, uptime_s=30.0 * n,
                                      temperature_c=20.0 + n % 5, firmware="vc-1.0",
                                      door=payloads.DoorState.CLOSED).to_bytes(), False)
            continue
        elif phase == 98:
            seq -= 1
            slots = tuple(payloads.SlotStock(slot=s, product="naloxone-nasal-4mg",
                                             count=max(0, c), capacity=500)
                          for s, c in counts.items())
            yield (machine_topic(machine_id, Channel.STOCK),
                   payloads.StockSnapshot(**ids, revision=n, device_time=at,
                                          slots=slots).to_bytes(), True)
            continue
        else:
            seq -= 1
            yield (machine_topic(machine_id, Channel.STATUS),
                   payloads.Status(**ids, state=payloads.MachineState.ONLINE,
                                   firmware="vc-1.0").to_bytes(), True)
            continue
        yield events, event.to_bytes(), False


def main() -> None:
    """Publish every machine's messages concurrently, paced by the worker's progress."""
    host, port, machines, per_machine, window, metrics_url, ahead = sys.argv[1:8]
    quiet_every, quiet_s = sys.argv[8:10]
    gate = ProgressGate(metrics_progress(metrics_url), int(ahead), timeout=ACK_TIMEOUT_S,
                        quiet_every=int(quiet_every), quiet_s=float(quiet_s)).start()
    try:
        fleet = [(soak_machine(n), soak_password(n)) for n in range(1, int(machines) + 1)]
        errors = publish_fleet(host, int(port), fleet,
                               lambda machine_id: messages(machine_id, int(per_machine)),
                               window=int(window), ack_timeout=ACK_TIMEOUT_S, gate=gate)
    finally:
        gate.stop()
    print_result(errors, published=gate.published, gate_waits=gate.waits,
                 quiet_spells=gate.quiet_spells)


if __name__ == "__main__":
    main()
