"""Distances and driving times between the depot and the stops.

By default from coordinates: the great-circle (haversine) distance times a
detour factor, because streets are not straight lines (1.3 is typical of a
city grid), driven at an average speed. A matrix file measured on the real
road network (OSRM, Valhalla, a GIS export) replaces both (docs/restock.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backend.restock.model import Matrix, Point

EARTH_RADIUS_M = 6_371_008.8  # the mean Earth radius (IUGG)
DEPOT = "depot"


class MatrixFileError(ValueError):
    """The distance/time matrix file cannot be used."""


def haversine_m(points: Sequence[Point]) -> np.ndarray:
    """Return the great-circle distances in metres between every pair of points."""
    lat = np.radians([p.lat for p in points])
    lon = np.radians([p.lon for p in points])
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
    result: np.ndarray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return result


def from_coordinates(
    depot: Point, places: Sequence[Point], *, detour_factor: float, speed_kmh: float
) -> Matrix:
    """Return road distances and times estimated from coordinates."""
    road = haversine_m([depot, *places]) * detour_factor
    seconds = road / (speed_kmh / 3.6)
    return Matrix(
        distance_m=np.rint(road).astype(np.int64).tolist(),
        duration_s=np.rint(seconds).astype(np.int64).tolist(),
        source=f"haversine x {detour_factor:g} at {speed_kmh:g} km/h",
    )


def _square(name: str, rows: object, size: int) -> list[list[int]]:
    if not isinstance(rows, list) or len(rows) != size:
        raise MatrixFileError(f"{name} must be a list of {size} rows")
    out: list[list[int]] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != size:
            raise MatrixFileError(f"every row of {name} must hold {size} numbers")
        values = []
        for value in row:
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and 0 <= value < 1e9
            ):
                raise MatrixFileError(f"{name} holds {value!r}: not a distance or time")
            values.append(round(value))
        out.append(values)
    return out


def read_matrix_file(path: Path) -> tuple[list[str], list[list[int]], list[list[int]]]:
    """Read ``{"ids": [...], "distance_m": [[...]], "duration_s": [[...]]}``; ids include depot."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MatrixFileError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise MatrixFileError(f"{path} must hold a JSON object")
    ids = data.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise MatrixFileError(f"{path}: ids must be a list of machine ids and {DEPOT!r}")
    if len(set(ids)) != len(ids) or DEPOT not in ids:
        raise MatrixFileError(f"{path}: ids must be distinct and include {DEPOT!r}")
    size = len(ids)
    return ids, _square("distance_m", data.get("distance_m"), size), _square(
        "duration_s", data.get("duration_s"), size)


def from_file(
    ids: list[str], distance_m: list[list[int]], duration_s: list[list[int]],
    machine_ids: Sequence[str], source: str,
) -> Matrix:
    """Return the submatrix for the depot then ``machine_ids`` (all must be in ``ids``)."""
    where = {name: i for i, name in enumerate(ids)}
    order = [where[DEPOT], *(where[m] for m in machine_ids)]
    return Matrix(
        distance_m=[[distance_m[i][j] for j in order] for i in order],
        duration_s=[[duration_s[i][j] for j in order] for i in order],
        source=source,
    )
