"""The planner's inputs (frozen dataclasses) and its answer (pydantic models): no I/O.

The inputs are assembled by ``gather.py`` from the database; the routing in
``routing.py`` sees only these, so tests and the benchmark build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field


class Urgency(StrEnum):
    """Why a machine should be visited, most pressing first."""

    CRITICAL = "critical"  # naloxone is out, or forecast to run out before the next shift
    URGENT = "urgent"  # an open empty/low-stock, expiry or heat alert
    ROUTINE = "routine"  # below par only: worth a visit on the way

    @property
    def rank(self) -> int:
        """Return 0 for the most pressing, 2 for the least."""
        return _RANK[self]


_RANK = {Urgency.CRITICAL: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}


@dataclass(frozen=True)
class Point:
    """A place in WGS 84 degrees."""

    lat: float
    lon: float


@dataclass(frozen=True)
class SlotLoad:
    """What one slot needs: items to reach par, plus doses to replace (expired, heat-exposed)."""

    slot: int
    product: str
    is_naloxone: bool
    count: int
    par: int
    to_par: int
    replace: int = 0
    # Lot numbers to take out (from the lots module when it knows them).
    replace_lots: tuple[str, ...] = ()

    @property
    def quantity(self) -> int:
        """Return the items to bring for this slot."""
        return self.to_par + self.replace


@dataclass(frozen=True)
class Stop:
    """A machine that needs a visit, with what to load and why."""

    machine_id: str
    name: str
    at: Point
    urgency: Urgency
    reasons: tuple[str, ...]
    loads: tuple[SlotLoad, ...]
    service_s: int
    # Reach the machine by then if the shift allows: naloxone may run out at that time.
    due: datetime | None = None
    # Naloxone in it must come out before the next shift (expired, heat-exposed, expiring).
    swap_now: bool = False

    @property
    def items(self) -> int:
        """Return the items this stop takes from the van."""
        return sum(load.quantity for load in self.loads)


@dataclass(frozen=True)
class Matrix:
    """Travel between places: index 0 is the depot, index i+1 is stop i."""

    distance_m: list[list[int]]
    duration_s: list[list[int]]
    source: str


@dataclass(frozen=True)
class Shift:
    """The vans, the shift they work and the solver's budget."""

    depot: Point
    start: datetime
    hours: float
    vans: int
    van_capacity: int
    solver_seconds: float

    @property
    def seconds(self) -> int:
        """Return the shift's length in seconds."""
        return round(self.hours * 3600)


class LoadLine(BaseModel):
    """Items of one slot to load at a stop."""

    slot: int
    product: str
    is_naloxone: bool = Field(default=False, description="load lots with number and expiry")
    count: int = Field(description="what the books say the slot holds now")
    par: int
    to_par: int = Field(description="items that bring the slot to par")
    replace: int = Field(description="doses to take out and replace (expired, heat-exposed)")
    replace_lots: list[str]
    quantity: int = Field(description="items to bring: to_par + replace")


class PlannedStop(BaseModel):
    """One machine on a van's route."""

    order: int = Field(description="1 for the van's first stop")
    machine_id: str
    name: str
    lat: float
    lon: float
    urgency: Literal["critical", "urgent", "routine"]
    reasons: list[str]
    arrival: datetime
    departure: datetime
    due: datetime | None = Field(
        default=None, description="reach it by then: naloxone may run out (forecast)")
    service_minutes: float
    items: int
    load: list[LoadLine]


class ProductLoad(BaseModel):
    """How many of one product a van carries out of the depot."""

    product: str
    quantity: int


class VanRoute(BaseModel):
    """One van's day: stops in order, what it carries, how far and how long."""

    van: int = Field(description="1-based van number")
    stops: list[PlannedStop]
    load_list: list[ProductLoad]
    items: int
    distance_km: float
    drive_minutes: float
    service_minutes: float
    departure: datetime
    return_time: datetime


class LeftOut(BaseModel):
    """A machine that needed a visit and is not on any route."""

    machine_id: str
    urgency: Literal["critical", "urgent", "routine"]
    items: int
    reason: str


class Plan(BaseModel):
    """A restock plan for one shift."""

    depot: Point
    shift_start: datetime
    shift_end: datetime
    van_capacity: int
    distance_source: str = Field(description="haversine x detour factor, or the matrix file")
    vans: list[VanRoute]
    left_out: list[LeftOut]
    distance_km: float
    served: int
    solver_status: str
    solver_seconds: float
