"""Benchmark: the space-time permutation scan over 2,000 machines x 90 days, 999 replicates.

Target (DESIGN.md): under 10 s on 2 cores. Prints the figures and writes
bench-results/hotspot_scan.json.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from backend.hotspots.simulate import Surge, draw_counts, make_fleet
from backend.hotspots.stpscan import ScanSettings, scan

MACHINES = 2_000
DAYS = 90
REPLICATES = 999
EXTENT_KM = 30.0
"""A 30 km x 30 km city: about 2.2 machines per km^2, ~60 inside a 3 km circle."""
TARGET_S = 10.0
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "hotspot_scan.json"


def test_hotspot_scan_2000_machines_90_days_999_replicates() -> None:
    rng = np.random.default_rng(2026)
    fleet = make_fleet(rng, machines=MACHINES, days=DAYS, extent_km=EXTENT_KM)
    surge = Surge(centre=0, radius_km=1.0, days=3, relative_risk=4.0)
    counts = draw_counts(rng, fleet, surge)
    workers = max(1, min(2, os.cpu_count() or 1))
    settings = ScanSettings(max_radius_km=3.0, max_days=7, replicates=REPLICATES, seed=1,
                            workers=workers)
    started = time.perf_counter()
    result = scan(counts, fleet.points, settings)
    seconds = time.perf_counter() - started
    one = time.perf_counter()
    single = scan(counts, fleet.points, ScanSettings(
        max_radius_km=3.0, max_days=7, replicates=REPLICATES, seed=1, workers=1))
    one_worker_s = time.perf_counter() - one
    base = time.perf_counter()
    scan(counts, fleet.points, ScanSettings(max_radius_km=3.0, max_days=7, replicates=0))
    setup_s = time.perf_counter() - base
    top = result.clusters[0]
    figures = {
        "machines": MACHINES,
        "days": DAYS,
        "replicates": REPLICATES,
        "workers": workers,
        "cases": int(counts.sum()),
        "max_radius_km": 3.0,
        "max_days": 7,
        "extent_km": EXTENT_KM,
        "seconds": round(seconds, 3),
        "setup_seconds": round(setup_s, 3),
        "ms_per_replicate": round((seconds - setup_s) / REPLICATES * 1000, 3),
        "target_seconds": TARGET_S,
        "seconds_one_worker": round(one_worker_s, 3),
        "thread_speedup": round(one_worker_s / seconds, 2),
        "same_p_values_any_threads": [c.p_value for c in single.clusters]
        == [c.p_value for c in result.clusters],
        "planted_cluster_found": bool(0 in top.locations),
        "top_cluster_p_value": top.p_value,
    }
    print("\nhotspot scan:", json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    assert figures["planted_cluster_found"]
    assert figures["same_p_values_any_threads"]
    assert seconds < TARGET_S * 3, "far slower than the target even for a shared machine"
