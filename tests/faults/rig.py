"""One machine's whole path with fault proxies in it, built once per test module.

Virtual controller (pty, in this process) -> ``nx-agent run`` (a child
process) -> proxy A -> Mosquitto -> proxy B -> ``nx-backend ingest`` (a child
process) -> SQLite. Each link has its own ``FaultProxy``; a test breaks one of
them while the controller vends, heals it, and checks that the database holds
every vend the controller made exactly once (``Ledger``).

Keepalives are short (``KEEPALIVE_S``) so that a partition several keepalives
long fits in a test; the issue's 60 s partition with the default 30 s
keepalive runs in tests/benchmarks/test_faults_bench.py.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session

from backend.db import make_engine, migrate
from firmware_agent.nxlink.link import LinkTiming
from simulators.broker import MosquittoBroker, free_port
from simulators.virtual_controller import VirtualController
from tests.agent.helpers import AgentProcess
from tests.backend.conftest import register
from tests.backend.procs import IngestProcess
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES
from tests.faultproxy import Closure, End, FaultProxy
from tests.waiting import wait_until

MACHINE = "test-001"
PRODUCT = "naloxone-nasal-4mg"
SLOTS = 4
STOCK = 9000
"""Items per slot: enough for every fault's 1,000 vends without emptying one."""
KEEPALIVE_S = 5
"""MQTT keepalive of the agent and ingest here (the settings' floor); 30 s by default."""
PACE_QUEUE = 64
"""Unacknowledged controller frames the test lets pile up before it waits."""
DRAIN_S = 240.0
"""Deadline for a fault's backlog to reach the database. Generous: Mosquitto rewrites its
whole store after each message (broker_config/mosquitto.conf), which a backlog and a
busy machine make slow; 1,000 vends took 90 s here under a load average of 25."""
POLL_S = 0.25
START_S = 120.0
"""Deadline for a child process to start: imports alone took 20 s under a load of 15."""
REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO / "var" / "test-artifacts"


@dataclass
class Rig:
    """Everything on the path, and what the controller has done so far."""

    broker: MosquittoBroker
    controller: VirtualController
    agent_link: FaultProxy
    ingest_link: FaultProxy
    agent: AgentProcess
    ingest: IngestProcess
    database_url: str
    metrics_port: int
    keepalive_s: int
    vended: int = 0
    tolerated: set[str] = field(default_factory=set)
    """ERROR lines of ingest a scenario provokes on purpose (matched by substring)."""

    def vend(self, count: int, *, over_s: float = 0.0) -> None:
        """Make ``count`` vends, spread evenly over ``over_s`` seconds (0: as fast as it goes)."""
        started = time.monotonic()
        for n in range(count):
            if over_s > 0:
                due = started + over_s * n / count
                wait_until(lambda due=due: time.monotonic() >= due,  # type: ignore[misc]
                           timeout=over_s + 5, what="the next vend's time")
            self.controller.vend(self.vended % SLOTS + 1)
            self.vended += 1
            # A busy machine: a few link windows queued at most.
            wait_until(lambda: self.controller.unacked < PACE_QUEUE, timeout=DRAIN_S,
                       what="controller queue room")

    def stored(self) -> int:
        """Dispense rows in the database."""
        return count_rows(self.database_url)

    def wait_stored(self, timeout: float = DRAIN_S) -> None:
        """Wait until the database holds as many vends as the controller made."""
        done = throttled(lambda: self.stored() >= self.vended)
        try:
            wait_until(done, timeout=timeout, what=f"{self.vended} vends in the database")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.stored()} there") from None
        wait_until(lambda: self.controller.unacked == 0, what="controller queue acknowledged")

    def check_exactly_once(self) -> Ledger:
        """Every vend the controller made is stored once and nothing else; stock agrees."""
        ledger = Ledger.read(self.database_url)
        made = Counter((slot, result.value) for slot, result in self.controller.vend_results)
        assert ledger.rows == len(self.controller.vend_results), (ledger.rows, self.vended)
        assert ledger.distinct_keys == ledger.rows
        assert ledger.by_slot_result == made  # none invented, none lost
        # The agent numbers its events 1, 2, 3... per boot: no gap, nothing past the end.
        assert ledger.seq_span == ledger.rows
        # Each vend decremented its slot once (a doubled one would show here).
        assert ledger.slot_counts == self.controller.counts
        return ledger

    def ingest_counter(self, name: str) -> float:
        """Read one counter of the ingest worker's Prometheus metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
        match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", body, re.MULTILINE)
        return float(match.group(1)) if match else 0.0


def count_rows(url: str) -> int:
    """The machine's dispense rows, read with a short-lived connection (sqlite3, no pool)."""
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        return int(db.execute("SELECT count(*) FROM dispense_event WHERE machine_id = ?",
                              (MACHINE,)).fetchone()[0])


def throttled(predicate: Callable[[], bool], every_s: float = POLL_S) -> Callable[[], bool]:
    """``predicate``, asked at most once per ``every_s`` (False in between).

    Waiting on the database at wait_until's 20 ms would load the machine we measure.
    """
    last = 0.0

    def ask() -> bool:
        nonlocal last
        now = time.monotonic()
        if now - last < every_s:
            return False
        last = now
        return predicate()

    return ask


@dataclass(frozen=True)
class Ledger:
    """What the database says about the machine's vends and stock."""

    rows: int
    distinct_keys: int
    seq_span: int
    by_slot_result: Counter[tuple[int, str]]
    slot_counts: dict[int, int]

    @classmethod
    def read(cls, url: str) -> Ledger:
        engine = make_engine(url)
        try:
            with engine.connect() as db:
                rows, keys, first, last = db.execute(text(
                    "SELECT count(*), count(DISTINCT boot_id || '/' || seq), min(seq), max(seq)"
                    " FROM dispense_event WHERE machine_id = :m"), {"m": MACHINE}).one()
                by = Counter({(int(s), str(r)): int(n) for s, r, n in db.execute(text(
                    "SELECT slot, result, count(*) FROM dispense_event WHERE machine_id = :m"
                    " GROUP BY slot, result"), {"m": MACHINE})})
                counts = {int(s): int(c) for s, c in db.execute(text(
                    "SELECT slot, count FROM slot WHERE machine_id = :m"), {"m": MACHINE})}
        finally:
            engine.dispose()
        span = 0 if rows == 0 else int(last) - int(first) + 1
        return cls(int(rows), int(keys), span, by, counts)


def _agent_config(path: Path, port: int, port_path: str, data_dir: Path, keepalive_s: int
                  ) -> Path:
    path.write_text("\n".join([
        f'machine_id = "{MACHINE}"',
        f'serial_port = "{port_path}"',
        'mqtt_host = "127.0.0.1"',
        f"mqtt_port = {port}",
        f'mqtt_password = "{TEST_MACHINES[MACHINE]}"',
        f"mqtt_keepalive_s = {keepalive_s}",
        f'data_dir = "{data_dir}"',
        "heartbeat_s = 3600",
        # Every message of a 1,000-vend burst may be in flight: over a 2 s link
        # the window, not the link, would otherwise set the pace.
        "max_inflight = 1000",
        "read_timeout_s = 0.05",
        "link_ack_timeout_s = 0.3",
        "link_down_retry_s = 0.3",
        "reconnect_min_s = 1",
        "reconnect_max_s = 2",
    ]) + "\n", encoding="utf-8")
    return path


@contextmanager
def build_rig(workdir: Path, keepalive_s: int = KEEPALIVE_S) -> Iterator[Rig]:
    """Start the whole path; stop it (and check the children logged no ERROR) afterwards."""
    with ExitStack() as stack:
        broker = MosquittoBroker({BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES})
        stack.callback(broker.cleanup)
        broker.start()
        url = f"sqlite:///{workdir / 'nx.db'}"
        migrate(url)
        engine = make_engine(url, immediate=True)
        with Session(engine) as session:
            register(session, MACHINE, count=STOCK, capacity=STOCK, slots=SLOTS)
        engine.dispose()
        agent_link = stack.enter_context(FaultProxy(broker.host, broker.port))
        ingest_link = stack.enter_context(FaultProxy(broker.host, broker.port))
        metrics_port = free_port()
        ingest = IngestProcess(url, broker, extra_env={
            "NX_MQTT_PORT": str(ingest_link.port),
            "NX_MQTT_KEEPALIVE_S": str(keepalive_s),
            "NX_INGEST_METRICS_PORT": str(metrics_port),
        })
        tolerated: set[str] = set()
        stack.callback(_stop_ingest, ingest, tolerated)
        wait_ingest(ingest)
        controller = VirtualController(
            {n: (PRODUCT, STOCK, STOCK) for n in range(1, SLOTS + 1)},
            timing=LinkTiming(ack_timeout_s=0.3, link_down_retry_s=0.3), seed=16,
            jam_rate=0.01)
        stack.enter_context(controller)
        config = _agent_config(workdir / "agent.toml", agent_link.port, controller.port,
                               workdir / "agent", keepalive_s)
        agent = AgentProcess(config, workdir / "agent.log")
        stack.callback(_stop_agent, agent)
        rig = Rig(broker, controller, agent_link, ingest_link, agent, ingest, url,
                  metrics_port, keepalive_s, tolerated=tolerated)
        yield rig


def wait_ingest(ingest: IngestProcess) -> None:
    """Wait until ``nx-backend ingest`` subscribed: a cold start is slow on a busy machine."""
    wait_until(lambda: any("subscribed to" in line for line in ingest.lines)
               or ingest.process.poll() is not None, timeout=START_S, what="ingest subscribed")
    assert ingest.process.poll() is None, "".join(ingest.lines)


def _stop_ingest(ingest: IngestProcess, tolerated: set[str]) -> None:
    if ingest.process.poll() is None:
        ingest.process.terminate()
        ingest.process.wait(START_S)
    errors = [line for line in ingest.lines
              if " ERROR " in line and not any(t in line for t in tolerated)]
    assert not errors, "".join(errors)


def _stop_agent(agent: AgentProcess) -> None:
    code = agent.terminate()
    log = agent.log_path.read_text(encoding="utf-8", errors="replace")
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert " ERROR " not in log, log[-3000:]


def noticed(proxy: FaultProxy, open_at_start: set[int], started: float,
            *ends: End) -> float | None:
    """Seconds from ``started`` until every connection open then was closed by one of ``ends``.

    None if one of them never was (the fault went unnoticed there).
    """
    closures: list[Closure] = proxy.closures_since(started)
    latest = 0.0
    for ident in open_at_start:
        times = [c.at for c in closures if c.connection == ident and c.by in ends]
        if not times:
            return None
        latest = max(latest, min(times) - started)
    return latest


def save_figures(name: str, figures: dict[str, object]) -> Path:
    """Write a test's measured figures as JSON under var/test-artifacts/<name>/ and print them."""
    folder = ARTEFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"figures-{os.getpid()}.json"
    path.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps({name: figures}, sort_keys=True))
    return path

