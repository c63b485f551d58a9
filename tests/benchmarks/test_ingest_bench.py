"""Benchmark: MQTT QoS 1 to committed rows, against a bare paho subscriber in the same run.

A fleet publishes vend events (QoS 1, paced by PUBACKs) while two consumers,
each in its own process, read the same stream from the same broker: a bare
paho subscriber that only counts, and ``nx-backend ingest`` that validates,
writes in batches and acknowledges after commit. Rates are messages over the
time from the first publish to the last message received (bare) or committed
(ingest). Runs on SQLite and, where one answers, PostgreSQL; with the dev
broker config (saves its store on every change) and with saves every 1,000
changes, where the broker is no longer the bottleneck.

Prints the figures and writes bench-results/ingest.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from backend import crud
from backend.config import Settings
from backend.db import make_engine, migrate
from backend.models import DispenseEvent
from simulators.broker import MosquittoBroker
from tests.backend.procs import Fleet, IngestProcess
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER
from tests.postgres import (
    POSTGRES_ADMIN_URL,
    create_pg_database,
    drop_pg_database,
    postgres_unavailable,
)

_PG_REASON = postgres_unavailable()

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "ingest.json"
BARE = Path(__file__).resolve().parent / "_bare_subscriber.py"
MACHINES = {f"bench-{n:03d}": f"bench-pw-{n:03d}" for n in range(1, 21)}
RECEIVE_MAXIMUM = int(os.environ.get("NX_BENCH_RECEIVE_MAX", Settings().ingest_receive_maximum))
"""Both consumers ask the broker for the same Receive Maximum: the worker's default."""
BATCH_MAX_SIZE = int(os.environ.get("NX_BENCH_BATCH", Settings().ingest_batch_max_size))
REPEATS = int(os.environ.get("NX_BENCH_REPEATS", "3"))
"""Each case runs this many times and reports its median ratio: one short run is noisy."""
POLL_S = 0.05
TIMEOUT_S = 900.0
CASES = [  # (label, extra broker config, events per machine)
    ("dev_config", "", int(os.environ.get("NX_BENCH_DEV_EVENTS", "250"))),
    ("save_every_1000", "autosave_interval 1000", int(os.environ.get("NX_BENCH_EVENTS", "5000"))),
]
HEADLINE = "save_every_1000"
"""The top-level figures: the case where the broker saves less often and is not itself the
bottleneck, so the ratio measures ingest (with the dev config both consumers just keep up
with a broker that rewrites its store on every change)."""


@contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    url = create_pg_database(POSTGRES_ADMIN_URL)
    try:
        yield url
    finally:
        drop_pg_database(url)


def _stored(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(
            select(func.count()).select_from(DispenseEvent)).scalar_one())


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (the ingest worker's writer), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    total = 0.0
    for one in pids:
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _run(kind: str, extra_config: str, per_machine: int, tmp: Path) -> dict[str, float]:
    total = per_machine * len(MACHINES)
    users = {BACKEND_USER: BACKEND_PASSWORD, **MACHINES}
    with MosquittoBroker(users, extra_config=extra_config) as broker, \
            _database(kind, tmp) as url:
        migrate(url)
        engine = make_engine(url)
        with Session(engine) as session:
            for machine_id in MACHINES:
                crud.register_machine(
                    session=session, machine_id=machine_id, name=machine_id, lat=0, lon=0,
                    actor="test",
                    slots=[{"slot": 1, "product": "naloxone-nasal-4mg",
                            "capacity": per_machine, "count": per_machine}])
        engine.dispose()
        ingest = IngestProcess(url, broker, extra_env={
            "NX_INGEST_RECEIVE_MAXIMUM": str(RECEIVE_MAXIMUM),
            "NX_INGEST_BATCH_MAX_SIZE": str(BATCH_MAX_SIZE)})
        bare = subprocess.Popen(
            [sys.executable, str(BARE), broker.host, str(broker.port), BACKEND_USER,
             BACKEND_PASSWORD, "nx/v1/machines/+/events", str(total), str(RECEIVE_MAXIMUM)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ingest.wait_subscribed()
            cpu_at_start = _cpu_seconds(ingest.process.pid)
            assert bare.stdout is not None
            assert bare.stdout.readline().strip() == "ready"
            fleet = Fleet(broker, MACHINES, per_machine)
            started = time.time()
            fleet.start()
            deadline = time.monotonic() + TIMEOUT_S
            ingest_done = 0.0
            # One engine for the polling: a connection per poll cost the publishers CPU.
            watcher = make_engine(url)
            try:
                while time.monotonic() < deadline:
                    if _stored(watcher) >= total:
                        ingest_done = time.time()
                        break
                    time.sleep(POLL_S)  # ok: polling a condition with a deadline
            finally:
                watcher.dispose()
            ingest_cpu = _cpu_seconds(ingest.process.pid) - cpu_at_start
            fleet.join(TIMEOUT_S)
            published = fleet.finished_at
            out, _ = bare.communicate(timeout=TIMEOUT_S)
            bare_stats = json.loads(out.strip().splitlines()[-1])
        finally:
            if bare.poll() is None:
                bare.kill()
            ingest.terminate()
        assert ingest_done, f"ingest did not commit {total} events within {TIMEOUT_S}s"
        check = make_engine(url)
        try:
            assert _stored(check) == total
        finally:
            check.dispose()
    bare_rate = total / (bare_stats["last"] - started)
    ingest_rate = total / (ingest_done - started)
    return {"messages": total, "publish_msgs_per_s": total / (published - started),
            "bare_msgs_per_s": bare_rate, "ingest_msgs_per_s": ingest_rate,
            "ratio": ingest_rate / bare_rate,
            "ingest_cpu_us_per_msg": ingest_cpu / total * 1e6}


def _median_run(kind: str, extra: str, per_machine: int, tmp: Path) -> dict[str, object]:
    """Run a case REPEATS times; report the run with the median ratio and every ratio."""
    runs = []
    for attempt in range(REPEATS):
        case_dir = tmp / f"run-{attempt}"
        case_dir.mkdir()
        runs.append(_run(kind, extra, per_machine, case_dir))
    runs.sort(key=lambda figures: figures["ratio"])
    median: dict[str, object] = {k: round(v, 3) for k, v in runs[len(runs) // 2].items()}
    median["ratios"] = [round(figures["ratio"], 3) for figures in runs]
    return median


def test_ingest_throughput_against_bare_subscriber(tmp_path: Path) -> None:
    kinds = ["sqlite"] + ([] if _PG_REASON else ["postgres"])
    report: dict[str, object] = {"machines": len(MACHINES), "receive_maximum": RECEIVE_MAXIMUM,
                                 "batch_max_size": BATCH_MAX_SIZE,
                                 "repeats": REPEATS}
    if _PG_REASON:
        report["postgres_skipped"] = _PG_REASON
    for label, extra, per_machine in CASES:
        for kind in kinds:
            case_dir = tmp_path / f"{label}-{kind}"
            case_dir.mkdir()
            figures = _median_run(kind, extra, per_machine, case_dir)
            report[f"{kind}_{label}"] = figures
            print(
                f"{kind:8} {label:16} {figures['messages']:>6} msgs: "
                f"bare {figures['bare_msgs_per_s']:8.0f}/s  "
                f"ingest {figures['ingest_msgs_per_s']:8.0f}/s  ratio {figures['ratio']:.2f} "
                f"(all {figures['ratios']})  "
                f"ingest CPU {figures['ingest_cpu_us_per_msg']:.0f} us/msg"
                f"  (publishers {figures['publish_msgs_per_s']:.0f}/s)"
            )
    headline = report[f"sqlite_{HEADLINE}"]
    assert isinstance(headline, dict)
    report["headline_case"] = HEADLINE
    report.update({"bare_msgs_per_s": headline["bare_msgs_per_s"],
                   "ingest_msgs_per_s": headline["ingest_msgs_per_s"],
                   "ratio": headline["ratio"]})
    if f"postgres_{HEADLINE}" in report:
        pg = report[f"postgres_{HEADLINE}"]
        assert isinstance(pg, dict)
        report.update({"postgres_bare_msgs_per_s": pg["bare_msgs_per_s"],
                       "postgres_ingest_msgs_per_s": pg["ingest_msgs_per_s"],
                       "postgres_ratio": pg["ratio"]})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    short = {key: figures["ratio"] for key, figures in report.items()
             if isinstance(figures, dict) and figures["ratio"] < 0.8}
    assert not short, f"median ratio under 0.8: {short}"
