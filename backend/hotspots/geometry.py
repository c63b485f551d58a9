"""Scan-circle geometry: coordinates to points, neighbour order, and capped cylinders."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6367.0
"""Sphere radius SaTScan uses to turn latitude/longitude into 3-D points."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class CoordinateSystem(StrEnum):
    """How the numbers of a coordinate file are to be read."""

    LATLON = "latlon"
    CARTESIAN = "cartesian"


def to_points(coords: FloatArray, system: CoordinateSystem) -> FloatArray:
    """Return points whose straight-line distances are the scan's distances.

    Latitude/longitude (degrees, column 0 latitude, column 1 longitude) become
    3-D points on a sphere of radius EARTH_RADIUS_KM, so distances are chords
    in km, exactly as SaTScan measures them. Cartesian coordinates pass through.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[0] == 0:
        raise ValueError("coordinates must be a non-empty 2-D array")
    if system is CoordinateSystem.CARTESIAN:
        return coords.copy()
    if coords.shape[1] != 2:
        raise ValueError("latitude/longitude coordinates need exactly two columns")
    lat = np.radians(coords[:, 0])
    lon = np.radians(coords[:, 1])
    return np.column_stack(
        (
            EARTH_RADIUS_KM * np.cos(lon) * np.cos(lat),
            EARTH_RADIUS_KM * np.sin(lon) * np.cos(lat),
            EARTH_RADIUS_KM * np.sin(lat),
        )
    )


def neighbour_order(
    points: FloatArray, centre: int, max_distance: float | None = None
) -> tuple[IntArray, FloatArray]:
    """Return the locations sorted by distance from `centre`, and those distances.

    Locations at exactly the same distance join in ascending coordinate order
    (first dimension, then the next), the tie rule SaTScan applies. With
    `max_distance`, only locations at most that far are returned.
    """
    diffs = points - points[centre]
    dist = np.sqrt(np.einsum("ij,ij->i", diffs, diffs))
    candidates = np.arange(points.shape[0], dtype=np.int64)
    if max_distance is not None:
        # A hair of slack: a neighbour exactly on the cap must not fall out
        # because its chord was rounded up in the last bit.
        candidates = np.flatnonzero(dist <= max_distance * (1 + 1e-12)).astype(np.int64)
    sub = points[candidates]
    # np.lexsort sorts by its last key first: distance, then x, then y, ...
    keys = [sub[:, d] for d in range(sub.shape[1] - 1, -1, -1)]
    order = candidates[np.lexsort((*keys, dist[candidates]))]
    return order, dist[order]


@dataclass(frozen=True)
class Cylinders:
    """Every scan circle, stored flat: circle m holds members[start[m]..m] of its centre.

    Rows are grouped by centre; within a centre, row k is the circle made of
    the k+1 nearest locations. `population` is the case total of the circle
    over the whole study period (its spatial marginal).
    """

    members: IntArray
    """Location joining the circle at each row (neighbour order within a centre)."""
    centre: IntArray
    """Centre of the circle of each row."""
    segment_start: IntArray
    """Row index where each row's centre begins."""
    radius: FloatArray
    """Distance from the centre to the location joining at this row."""
    population: FloatArray
    """Cumulative spatial total of the circle ending at this row."""
    centre_starts: IntArray
    """First row of each centre (len = number of locations + 1, last = total rows)."""

    @property
    def rows(self) -> int:
        """Return the number of circles."""
        return int(self.members.shape[0])

    def locations(self, row: int) -> list[int]:
        """Return the locations of the circle at `row`, in the order they joined."""
        return [int(x) for x in self.members[int(self.segment_start[row]) : row + 1]]


def build_cylinders(
    points: FloatArray,
    location_totals: npt.ArrayLike,
    *,
    max_radius: float | None,
    max_share: float,
) -> Cylinders:
    """Grow a circle around each location by nearest neighbours within both caps.

    A location joins while its distance is at most `max_radius` and the circle's
    share of all cases stays at most `max_share` (SaTScan's "percent of
    population at risk", where for this model the population is the cases).
    """
    totals = np.asarray(location_totals, dtype=np.float64)
    n = points.shape[0]
    if totals.shape != (n,):
        raise ValueError("one location total per location is needed")
    if not 0 < max_share <= 1:
        raise ValueError("max_share must be in (0, 1]")
    cap = max_share * float(totals.sum())
    members: list[IntArray] = []
    radii: list[FloatArray] = []
    pops: list[FloatArray] = []
    for c in range(n):
        order, dist = neighbour_order(points, c, max_radius)
        cum = np.cumsum(totals[order])
        keep = int(np.searchsorted(cum, cap * (1 + 1e-12), side="right"))
        members.append(order[:keep])
        radii.append(dist[:keep])
        pops.append(cum[:keep])
    counts = np.array([m.shape[0] for m in members], dtype=np.int64)
    centre_starts = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    centre = np.repeat(np.arange(n, dtype=np.int64), counts)
    return Cylinders(
        members=np.concatenate(members).astype(np.int64) if n else np.zeros(0, np.int64),
        centre=centre,
        segment_start=centre_starts[centre],
        radius=np.concatenate(radii),
        population=np.concatenate(pops),
        centre_starts=centre_starts,
    )
