"""Write vends to a fleet through ingest's batch writer, for the API benchmark (a child process).

``python -m tests.benchmarks._fleet_writer URL MACHINES SECONDS``: ten seconds of
batches (RATE vends a second on random machines), ten quiet, and so on; prints the
number of vends written. Ingest's own code writes them, so the database's triggers
and the API see exactly what a running ingest worker would cause.
"""

from __future__ import annotations

import random
import sys
import time

from sqlmodel import Session

from backend.db import make_engine
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import utcnow
from tests.backend.helpers import events_topic, vend

RATE = 40
"""Vends a second while busy: 400 machines change in a busy 10 s, about 4% of 10,000."""
BATCH_S = 0.25
BUSY_S = 10.0
QUIET_S = 10.0


def main() -> None:
    """Write until the time is up."""
    url, machines, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    engine = make_engine(url, immediate=True)
    writer = BatchWriter(default_low_threshold=2)
    rng = random.Random(7)
    seqs: dict[str, int] = {}
    written = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        if elapsed % (BUSY_S + QUIET_S) >= BUSY_S:
            time.sleep(BATCH_S)  # pacing the load, not waiting for anything
            continue
        messages = []
        for _ in range(int(RATE * BATCH_S)):
            machine_id = f"city-{rng.randrange(machines):05d}"
            seqs[machine_id] = seqs.get(machine_id, 0) + 1
            event = vend(machine_id, seqs[machine_id], slot=rng.randint(1, 4))
            messages.append(Message(events_topic(machine_id), event.to_bytes(), utcnow()))
        with Session(engine) as session:
            writer.write(session, messages, utcnow())
            session.commit()
        written += len(messages)
        time.sleep(BATCH_S)
    engine.dispose()
    print(written)


if __name__ == "__main__":
    main()
