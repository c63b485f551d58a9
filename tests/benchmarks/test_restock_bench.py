"""Restock planner benchmark (``make bench`` -> ``bench-results/restock.json``).

A 200-machine city (machines around neighbourhood centres, 10 % with naloxone
out), 3 vans on an 8-hour shift, planned from a SQLite database with the
default settings: the time of what the API does (forecast and lots read,
machines read, needs, distances, solve), and the planned kilometres against
nearest-neighbour tours over the same stops, in the same run and with the same
distances (haversine x detour factor): each van's stops toured nearest-first from the depot and back
(``route_ratio_vs_nearest_neighbour``, target at most 0.9). Also reported, not
a target: one closed nearest-neighbour tour over all served stops, which never
returns to the depot between vans and ignores the shift, so three shift-bound
vans cannot match it (``route_ratio_vs_one_nearest_neighbour_tour``).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session

from backend import crud
from backend.config import Settings
from backend.db import make_engine, migrate
from backend.forecast.settings import ForecastSettings
from backend.restock.distances import from_coordinates
from backend.restock.forecast_input import forecast_extras
from backend.restock.lots_input import combined, lot_extras
from backend.restock.model import Matrix, Point
from backend.restock.plan import plan_shift

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "restock.json"
MACHINES, VANS, HOURS, SEED = 200, 3, 8.0, 20261203
DEPOT = Point(40.7484, -73.9857)
PLAN_SECONDS_TARGET, RATIO_TARGET = 2.0, 0.9


def _city(session: Session) -> None:
    rng = random.Random(SEED)
    centres = [(DEPOT.lat + rng.uniform(-0.07, 0.07), DEPOT.lon + rng.uniform(-0.09, 0.09))
               for _ in range(8)]
    for i in range(MACHINES):
        lat, lon = rng.choice(centres)
        naloxone = 0 if rng.random() < 0.10 else rng.randint(1, 10)
        crud.register_machine(
            session=session, machine_id=f"bench-{i:03d}", name=f"Bench {i}",
            lat=lat + rng.gauss(0, 0.012), lon=lon + rng.gauss(0, 0.015), actor="bench",
            slots=[{"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 10,
                    "count": naloxone, "par": 8, "low_threshold": 2},
                   {"slot": 2, "product": "fentanyl-test-strips", "capacity": 20,
                    "count": rng.randint(0, 20), "par": 15, "low_threshold": 3}])


def nearest_neighbour_m(matrix: Matrix) -> int:
    """Return the length of a closed nearest-neighbour tour from the depot (row 0)."""
    left = set(range(1, len(matrix.distance_m)))
    here, metres = 0, 0
    while left:
        step = min(left, key=lambda j: (matrix.distance_m[here][j], j))
        metres += matrix.distance_m[here][step]
        left.remove(step)
        here = step
    return metres + matrix.distance_m[here][0]


def test_restock_plan_200_machines_3_vans(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    engine = make_engine(url, immediate=True)
    settings = Settings(environment="test", database_url=url)
    try:
        with Session(engine) as session:
            _city(session)
        with Session(engine) as session:
            start = datetime(2026, 12, 3, 8, tzinfo=UTC)
            started = time.perf_counter()
            extras = combined(
                forecast_extras(session, shift_start=start, settings=ForecastSettings(), now=start),
                lot_extras(session, settings=settings, now=start))
            plan = plan_shift(session, settings, depot=DEPOT, start=start, hours=HOURS, vans=VANS,
                              extras=extras)
            plan_seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    def tour_km(points: list[Point]) -> float:
        matrix = from_coordinates(DEPOT, points, detour_factor=settings.restock_detour_factor,
                                  speed_kmh=settings.restock_speed_kmh)
        return nearest_neighbour_m(matrix) / 1000

    per_van = [tour_km([Point(s.lat, s.lon) for s in v.stops]) for v in plan.vans]
    nn_km = sum(per_van)
    ratio = plan.distance_km / nn_km
    one_tour_km = tour_km([Point(s.lat, s.lon) for v in plan.vans for s in v.stops])
    urgency_served = Counter(s.urgency for v in plan.vans for s in v.stops)
    figures = {
        "machines": MACHINES,
        "vans": VANS,
        "shift_hours": HOURS,
        "van_capacity": plan.van_capacity,
        "solver_seconds_limit": settings.restock_solver_seconds,
        "plan_seconds": round(plan_seconds, 3),
        "plan_seconds_target": PLAN_SECONDS_TARGET,
        "stops_served": plan.served,
        "served_by_urgency": dict(sorted(urgency_served.items())),
        "left_out_by_urgency": dict(sorted(Counter(o.urgency for o in plan.left_out).items())),
        "route_km": plan.distance_km,
        "route_km_per_van": [v.distance_km for v in plan.vans],
        "nearest_neighbour_km": round(nn_km, 3),
        "nearest_neighbour_km_per_van": [round(km, 3) for km in per_van],
        "route_ratio_vs_nearest_neighbour": round(ratio, 3),
        "route_ratio_target": RATIO_TARGET,
        "one_nearest_neighbour_tour_km": round(one_tour_km, 3),
        "route_ratio_vs_one_nearest_neighbour_tour": round(plan.distance_km / one_tour_km, 3),
        "distance_source": plan.distance_source,
        "solver_status": plan.solver_status,
    }
    print(json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    assert plan.served > 0
    assert plan_seconds < PLAN_SECONDS_TARGET, figures
    assert ratio <= RATIO_TARGET, figures
