"""Lay out a simulated fleet: ids, names, places, planograms and demand per machine.

Pure and seeded: the same seed gives the same fleet, so the demo, the tests
and the backend registration agree on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulators.geography import NEIGHBOURHOODS, Neighbourhood

# Markers stand within this distance of their neighbourhood's centre.
JITTER_M = 350.0
METRES_PER_DEGREE_LAT = 111_320.0


@dataclass(frozen=True, slots=True)
class Product:
    code: str
    capacity: int
    par: int
    low_threshold: int
    popularity: float
    """Relative chance that a visitor takes this product."""


PRODUCTS: tuple[Product, ...] = (
    Product("naloxone-nasal-4mg", capacity=12, par=10, low_threshold=3, popularity=3.0),
    Product("naloxone-nasal-4mg", capacity=12, par=10, low_threshold=3, popularity=3.0),
    Product("fentanyl-test-strips", capacity=20, par=16, low_threshold=4, popularity=2.0),
    Product("wound-care-kit", capacity=10, par=8, low_threshold=2, popularity=1.0),
)
"""The planogram of every simulated machine: slot n holds PRODUCTS[n - 1]."""


@dataclass(frozen=True, slots=True)
class SlotSpec:
    slot: int
    product: str
    capacity: int
    count: int
    par: int
    low_threshold: int
    popularity: float

    def as_registration(self) -> dict[str, object]:
        """Return the slot as ``backend.crud.register_machine`` takes it."""
        return {
            "slot": self.slot,
            "product": self.product,
            "capacity": self.capacity,
            "count": self.count,
            "par": self.par,
            "low_threshold": self.low_threshold,
        }


@dataclass(frozen=True, slots=True)
class MachineSpec:
    machine_id: str
    name: str
    site: str
    lat: float
    lon: float
    per_day: float
    """Mean visitors per day (each takes one item)."""
    slots: tuple[SlotSpec, ...]


def machine_id(index: int, prefix: str = "phl") -> str:
    """Return the id of the ``index``-th machine (1-based), e.g. ``phl-007``."""
    return f"{prefix}-{index:03d}"


def _jitter(rng: np.random.Generator, place: Neighbourhood) -> tuple[float, float]:
    distance = JITTER_M * math.sqrt(float(rng.random()))
    bearing = float(rng.random()) * 2 * math.pi
    dlat = distance * math.cos(bearing) / METRES_PER_DEGREE_LAT
    dlon = distance * math.sin(bearing) / (
        METRES_PER_DEGREE_LAT * math.cos(math.radians(place.lat))
    )
    return round(place.lat + dlat, 5), round(place.lon + dlon, 5)


def plan_fleet(
    count: int,
    *,
    seed: int = 2026,
    mean_per_day: float = 6.0,
    prefix: str = "phl",
) -> list[MachineSpec]:
    """Return ``count`` machines spread over the neighbourhoods, busiest places first."""
    if count < 1:
        raise ValueError("a fleet needs at least one machine")
    rng = np.random.default_rng(seed)
    places = sorted(NEIGHBOURHOODS, key=lambda n: -n.weight)
    mean_weight = sum(n.weight for n in places) / len(places)
    machines: list[MachineSpec] = []
    for index in range(1, count + 1):
        place = places[(index - 1) % len(places)]
        round_no = (index - 1) // len(places) + 1
        lat, lon = _jitter(rng, place)
        slots = tuple(
            SlotSpec(
                slot=n,
                product=p.code,
                capacity=p.capacity,
                # Machines start between half full and full, so the demo shows a mix.
                count=int(rng.integers(p.capacity // 2, p.capacity + 1)),
                par=p.par,
                low_threshold=p.low_threshold,
                popularity=p.popularity,
            )
            for n, p in enumerate(PRODUCTS, start=1)
        )
        machines.append(
            MachineSpec(
                machine_id=machine_id(index, prefix),
                name=f"{place.name} {round_no}",
                site=place.name,
                lat=lat,
                lon=lon,
                per_day=round(mean_per_day * place.weight / mean_weight, 3),
                slots=slots,
            )
        )
    return machines
