"""Benchmark: EVA-DTS parsing and a full DEX/UCS audit read over a pty.

No target in DESIGN.md; these figures say how much of a Pi's time DEX polling
costs. Prints them and writes bench-results/dex.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import serial

from firmware_agent.dex.link import LinkTimings, UcsMaster
from firmware_agent.dex.parser import parse_audit
from simulators.virtual_dex import VirtualDexMachine
from tests.dex.helpers import DATA

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "dex.json"
PARSE_ROUNDS = 200
READS = 5
BIG_SELECTIONS = 200
WIRE_BAUD = 9600
"""The usual DEX port speed: 10 bits per byte on the wire."""


def test_dex_parse_and_read() -> None:
    files = sorted(p for p in DATA.iterdir() if p.suffix in {".eva_dts", ".txt"}
                   and not p.name.startswith("LICENSE"))
    parse_ms = {}
    for path in files:
        data = path.read_bytes()
        started = time.perf_counter()
        for _ in range(PARSE_ROUNDS):
            parse_audit(data)
        parse_ms[path.name] = round((time.perf_counter() - started) / PARSE_ROUNDS * 1000, 3)

    selections = {str(n): (f"PRODUCT {n}", 0) for n in range(1, BIG_SELECTIONS + 1)}
    with VirtualDexMachine(selections, response_s=5.0) as vm:
        for n in range(1, BIG_SELECTIONS + 1):
            vm.vend(str(n), count=n)
        size = len(vm.audit_text())
        with serial.serial_for_url(vm.port, baudrate=WIRE_BAUD, timeout=0.05) as port:
            master = UcsMaster(port, timings=LinkTimings(response_s=5.0))
            started = time.perf_counter()
            for _ in range(READS):
                audit = parse_audit(master.read_audit())
            read_s = (time.perf_counter() - started) / READS
    assert audit.selection(str(BIG_SELECTIONS)).free_vends == BIG_SELECTIONS
    blocks = -(-size // 245)
    figures = {
        "parse_ms_per_file": parse_ms,
        "big_audit_bytes": size,
        "big_audit_blocks": blocks,
        "pty_read_seconds": round(read_s, 3),
        "pty_read_kib_per_s": round(size / read_s / 1024, 1),
        "estimated_9600_baud_seconds": round(size * 10 / WIRE_BAUD, 1),
    }
    print("\nDEX:", json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2), encoding="utf-8")
