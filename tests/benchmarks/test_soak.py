"""Soak in accelerated time: the agent and an ingest worker through a long life, memory watched.

The agent (``nx-agent run`` as its own process, on a virtual controller's pty,
against the real Mosquitto of the fixture) goes through NX_SOAK_AGENT_EVENTS
controller events (default 1,000,000): vends, restocks, door openings and
temperature excursions, fed as fast as the link takes them, with a heartbeat
every second instead of every minute. Years of a machine's life in minutes.

An ingest worker (``nx-backend ingest``, its writer child included, SQLite,
real Mosquitto saving every 1,000 changes) takes NX_SOAK_INGEST_MESSAGES
messages (default 2,000,000) from NX_SOAK_INGEST_MACHINES machines: vends,
restocks, doors, heartbeats, retained stock and status, and a malformed
message every 10,000 (dead letters), with maintenance every second.

The fleet is paced by the worker's progress (at most NX_SOAK_INGEST_AHEAD
messages published and not yet finished with) and quiet for a few seconds
every NX_SOAK_INGEST_QUIET_EVERY messages and at the end, so that the
writer's upkeep, which it runs only when idle, runs throughout and is
measured with the rest; the run fails if the
broker dropped a message: its dropped-message counter
(``$SYS/broker/publish/messages/dropped``) moved or its log says so.

Each process's resident memory (VmRSS), open fds and threads are sampled
throughout (tests/benchmarks/_soak.py says how growth is computed). Target:
RSS growth under 2 MB from the first 10% to the end, and no growth in fds or
threads. Figures go to stdout and bench-results/soak.json (each test updates
its own part of the file).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlmodel import Session

from backend import crud
from backend.db import migrate
from backend.provisioning.broker_monitor import BrokerMonitor, DropReport
from simulators.broker import MosquittoBroker, free_port
from simulators.virtual_controller import VirtualController
from tests.agent.helpers import Collector
from tests.backend.procs import IngestProcess
from tests.benchmarks import _soak
from tests.benchmarks._ingest_progress import counters, finished
from tests.benchmarks._soak_publisher import soak_machine, soak_password
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "soak.json"
PUBLISHER = Path(__file__).resolve().parent / "_soak_publisher.py"
AGENT_EVENTS = int(os.environ.get("NX_SOAK_AGENT_EVENTS", "1000000"))
INGEST_MESSAGES = int(os.environ.get("NX_SOAK_INGEST_MESSAGES", "2000000"))
INGEST_MACHINES = int(os.environ.get("NX_SOAK_INGEST_MACHINES", "20"))
INGEST_AHEAD = int(os.environ.get("NX_SOAK_INGEST_AHEAD", "20000"))
"""Messages the fleet may publish beyond what ingest has finished with: a tenth of the
dev broker's max_queued_messages (200,000), and a few seconds of ingest's work, so the
worker never waits for the fleet and the broker's queue for it never overflows."""
INGEST_QUIET_EVERY = int(os.environ.get("NX_SOAK_INGEST_QUIET_EVERY", "100000"))
"""Every so many messages the fleet lets the worker catch up and idle (0: never)."""
QUIET_S = 3.0
"""A quiet spell: three of the soak's 1 s maintenance intervals, so that the writer, which
runs its upkeep only when idle, runs it at least once (tests/benchmarks/_ingest_progress.py)."""
RSS_GROWTH_TARGET_MB = 2.0
SAMPLE_S = 0.5
AGENT_BACKLOG = 400
"""Frames the controller may have queued and unacknowledged before the feed waits."""
CYCLE = 100
"""Per 100 controller events: 96 vends, a restock, a door opened and closed, a temperature
crossing (the agent publishes only crossings, so the reading alternates 20 and 30 °C)."""
SLOTS = {n: (f"product-{n}", 2500, 2500) for n in range(1, 5)}
TIMEOUT_S = 3000.0
PUBLISH_WINDOW = 50
STOP_S = 180.0
SYS_INTERVAL_S = 1
"""The soak broker refreshes its $SYS counters every second (10 s by default)."""
DROPPED_LINE = "Outgoing messages are being dropped"
"""Mosquitto's NOTICE when a client's queue is full (src/database.c, db__message_insert)."""


def _update_results(part: str, figures: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    current: dict[str, Any] = {}
    if RESULTS.exists():
        current = json.loads(RESULTS.read_text(encoding="utf-8"))
    current[part] = figures
    current["rss_growth_target_mb"] = RSS_GROWTH_TARGET_MB
    RESULTS.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")


def _report(name: str, count_name: str, figures: dict[str, Any]) -> None:
    print(f"\nsoak {name}: {figures[count_name]} {count_name} in {figures['seconds']:.0f} s "
          f"({figures['per_s']:.0f}/s); RSS {figures['rss_baseline_mb']:.1f} MB at 10% -> "
          f"{figures['rss_end_mb']:.1f} MB at the end, growth {figures['rss_growth_mb']:+.2f} MB "
          f"(slope {figures['rss_slope_mb_per_100k']:+.3f} MB/100k); fds "
          f"{figures['fds_baseline']} -> {figures['fds_end']}, threads "
          f"{figures['threads_baseline']} -> {figures['threads_end']}")


def _check(figures: dict[str, Any]) -> None:
    assert figures["rss_growth_mb"] < RSS_GROWTH_TARGET_MB, figures
    assert figures["fd_growth"] <= 0, figures
    assert figures["thread_growth"] <= 0, figures


# --- the agent ----------------------------------------------------------------------------


def _agent_meta(db: Path, key: str) -> str | None:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _outbox_depth(db: Path) -> int:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def _feed_cycle(vc: VirtualController, cycle: int) -> None:
    """Queue one cycle of CYCLE controller events at the virtual controller."""
    for n in range(CYCLE - 4):
        vc.vend(n % 4 + 1)
    vc.restock(cycle % 4 + 1, 2500)
    vc.open_door()
    vc.close_door()
    vc.set_temperature(30.0 if cycle % 2 == 0 else 20.0)
    # The controller keeps every result for tests to inspect; a soak does not need them.
    vc.vend_results.clear()


def test_agent_soak(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    machine = "test-001"
    cycles = max(1, AGENT_EVENTS // CYCLE)
    total = cycles * CYCLE
    data_dir = tmp_path / "data"
    db = data_dir / "agent.db"
    config = tmp_path / "agent.toml"
    vc = VirtualController(SLOTS, seed=1).start()
    config.write_text("\n".join([
        f'machine_id = "{machine}"', f'serial_port = "{vc.port}"',
        f'mqtt_host = "{mosquitto.host}"', f"mqtt_port = {mosquitto.port}",
        f'mqtt_password = "{TEST_MACHINES[machine]}"', f'data_dir = "{data_dir}"',
        "heartbeat_s = 1.0",  # accelerated: a heartbeat a second, not a minute
    ]) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NX_AGENT_")}
    proc = subprocess.Popen([sys.executable, "-m", "firmware_agent.cli", "--log-level",
                             "WARNING", "run", "--config", str(config)], env=env)
    fed = 0
    max_outbox = 0
    try:
        # Only the status topic: a subscriber to the events would keep a million of them.
        status = Collector(mosquitto, client_id="soak-status",
                           topics=(f"nx/v1/machines/{machine}/status",))
        try:
            wait_until(lambda: any(s["state"] == "online" for s in status.on("status"))
                       and vc.unacked == 0, timeout=60, what="agent online, HELLO acknowledged")
        finally:
            status.close()
        sampler = _soak.Sampler(lambda: [proc.pid], lambda: fed, SAMPLE_S).start()
        started = time.monotonic()
        next_outbox_check = started
        for cycle in range(cycles):
            while vc.unacked > AGENT_BACKLOG:
                assert proc.poll() is None, "the agent died"
                time.sleep(0.005)  # ok: pacing the feed on the controller's backlog
            _feed_cycle(vc, cycle)
            fed += CYCLE
            if time.monotonic() >= next_outbox_check:
                max_outbox = max(max_outbox, _outbox_depth(db))
                next_outbox_check = time.monotonic() + 5
            assert time.monotonic() - started < TIMEOUT_S, f"fed {fed} of {total} in time"
        wait_until(lambda: vc.unacked == 0 and _outbox_depth(db) == 0, timeout=600,
                   what=f"{total} events ACKed by the agent and PUBACKed by the broker")
        elapsed = time.monotonic() - started
        sampler.stop()
        # Every event stored under its own seq and published: the sequence counter has
        # moved by exactly the events fed, and the outbox is empty.
        next_seq = int(_agent_meta(db, "next_seq") or 0)
    finally:
        # The agent first: a controller that vanishes under it is a warning in its log.
        proc.terminate()
        proc.wait(30)
        vc.stop()
    assert next_seq == total, (next_seq, total)
    figures: dict[str, Any] = {"events": total, "seconds": round(elapsed, 1),
                               "per_s": round(total / elapsed, 1),
                               "max_outbox_depth": max_outbox,
                               **_soak.growth(sampler.samples, total),
                               "curve": _soak.curve(sampler.samples)}
    _update_results("agent", figures)
    _report("agent", "events", figures)
    _check(figures)


# --- the ingest worker --------------------------------------------------------------------


def _role(pid: int, worker: int) -> str:
    """Name a process of the ingest worker's tree for the report."""
    if pid == worker:
        return "worker"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    return f"resource_tracker {pid}" if b"resource_tracker" in cmdline else f"writer {pid}"


def _broker_drops(broker: MosquittoBroker, monitor: BrokerMonitor,
                  reports: list[DropReport]) -> list[str]:
    """What shows the broker dropped messages: its counter's reports and its log's notice."""
    found = [f"$SYS counter: {r}" for r in reports]
    found += [line for line in broker.log_tail(1_000_000).splitlines() if DROPPED_LINE in line]
    if monitor.last_total:
        found.append(f"$SYS/broker/publish/messages/dropped = {monitor.last_total}")
    return found


def _register_fleet(url: str, machines: dict[str, str]) -> None:
    migrate(url)
    from backend.db import make_engine

    engine = make_engine(url)
    with Session(engine) as session:
        for machine_id in machines:
            crud.register_machine(
                session=session, machine_id=machine_id, name=machine_id, lat=0, lon=0,
                actor="test",
                slots=[{"slot": s, "product": "naloxone-nasal-4mg", "capacity": 500,
                        "count": 500} for s in range(1, 5)])
    engine.dispose()


def test_ingest_soak(tmp_path: Path) -> None:
    per_machine = max(1, INGEST_MESSAGES // INGEST_MACHINES)
    total = per_machine * INGEST_MACHINES
    machines = {soak_machine(n): soak_password(n) for n in range(1, INGEST_MACHINES + 1)}
    url = f"sqlite:///{tmp_path / 'soak.db'}"
    _register_fleet(url, machines)
    metrics_port = free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    handled = 0
    drops: list[DropReport] = []
    with MosquittoBroker({BACKEND_USER: BACKEND_PASSWORD, **machines},
                         extra_config=f"autosave_interval 1000\nsys_interval {SYS_INTERVAL_S}"
                         ) as broker:
        monitor = BrokerMonitor(host=broker.host, port=broker.port, username=BACKEND_USER,
                                password=BACKEND_PASSWORD, on_drop=drops.append,
                                client_id="soak-drop-monitor")
        monitor.start()
        ingest = IngestProcess(url, broker, extra_env={
            "NX_INGEST_METRICS_PORT": str(metrics_port),
            "NX_INGEST_MAINTENANCE_INTERVAL_S": "1"})
        publisher: subprocess.Popen[str] | None = None
        try:
            # Both sessions: the shared one (events, telemetry) and the retained reader's.
            wait_until(lambda: sum("subscribed to" in line for line in ingest.lines) >= 2
                       or ingest.process.poll() is not None, timeout=60,
                       what="both ingest subscriptions")
            assert ingest.process.poll() is None, "".join(ingest.lines)
            # The counter's first reading (0): without it a drop could go unseen.
            wait_until(lambda: monitor.last_total is not None, timeout=30,
                       what="the broker's dropped-message counter")

            def pids() -> list[int]:
                return [ingest.process.pid, *_soak.children(ingest.process.pid)]

            def progress() -> int:
                return handled

            sampler = _soak.Sampler(pids, progress, SAMPLE_S).start()
            started = time.monotonic()
            publisher = subprocess.Popen(
                [sys.executable, str(PUBLISHER), broker.host, str(broker.port),
                 str(INGEST_MACHINES), str(per_machine), str(PUBLISH_WINDOW), metrics_url,
                 str(INGEST_AHEAD), str(INGEST_QUIET_EVERY), str(QUIET_S)],
                cwd=ROOT, stdout=subprocess.PIPE, text=True)
            deadline = started + TIMEOUT_S
            found: dict[str, int] = {}
            while handled < total:
                assert time.monotonic() < deadline, f"ingest handled {handled} of {total}"
                assert ingest.process.poll() is None, "".join(ingest.lines[-20:])
                # A dropped message never arrives: fail now rather than at the deadline.
                assert not drops, f"the broker dropped messages: {drops}"
                found = counters(metrics_url) or found
                handled = finished(found)
                time.sleep(SAMPLE_S)  # ok: polling the worker's counters with a deadline
            elapsed = time.monotonic() - started
            # The last quiet spell, sampled like the others: the end of the run includes
            # the upkeep the idle writer runs.
            done_at = time.monotonic()
            wait_until(lambda: time.monotonic() - done_at > QUIET_S, timeout=QUIET_S + 5,
                       what="the closing quiet spell")
            sampler.stop()
            out, _ = publisher.communicate(timeout=120)
            published = json.loads(out.strip().splitlines()[-1])
            assert not published["errors"], published["errors"][:3]
            # The counter is published only when it changes, at most SYS_INTERVAL_S after:
            # two intervals after the last publish, a drop would have been reported.
            last_publish = time.monotonic()
            wait_until(lambda: time.monotonic() - last_publish > 2 * SYS_INTERVAL_S,
                       timeout=10, what="two $SYS intervals after the last publish")
            broker_drops = _broker_drops(broker, monitor, drops)
            per_pid = {_role(pid, ingest.process.pid): _soak.growth_of(readings, total)
                       for pid, readings in sampler.per_pid.items()}
            # The figures are kept before the worker stops: a slow stop must not lose them.
            figures: dict[str, Any] = {
                "messages": total, "machines": INGEST_MACHINES, "seconds": round(elapsed, 1),
                "per_s": round(total / elapsed, 1),
                "processes": "worker + writer child + multiprocessing resource tracker, summed",
                **_soak.growth(sampler.samples, total), "curve": _soak.curve(sampler.samples),
                "rss_per_process_mb": per_pid, "counters": found,
                "publish_ahead_max": INGEST_AHEAD, "publisher_held_back": published["gate_waits"],
                "quiet_every": INGEST_QUIET_EVERY, "quiet_s": QUIET_S,
                "quiet_spells": published["quiet_spells"] + 1,
                "broker_dropped": monitor.last_total, "broker_drop_evidence": broker_drops[:5]}
            _update_results("ingest", figures)
            _report("ingest", "messages", figures)
        finally:
            monitor.stop()
            if publisher is not None and publisher.poll() is None:
                publisher.kill()
                publisher.wait(30)
            if ingest.process.poll() is None:
                # On a loaded machine the writer's last batch and the broker's goodbye
                # took over the helper's 30 s once; the stop itself is not measured here.
                ingest.process.terminate()
                ingest.process.wait(STOP_S)
            ingest.terminate()  # reaps the log and checks nothing was logged at ERROR
    assert not broker_drops, broker_drops
    # Each message once (a redelivery after a reconnect is a counted duplicate, not a row).
    assert handled == total, (handled, total, found)
    _check(figures)
