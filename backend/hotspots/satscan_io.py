"""Read and write SaTScan case (.cas), coordinate (.geo) and parameter (.prm) files.

Officials run the same data through SaTScan, so the files we write are the
ones SaTScan reads: whitespace-separated records, dates as YYYY/MM/DD, one
location per coordinates line (latitude first for lat/long files).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.hotspots.engine import IntMatrix
from backend.hotspots.geometry import CoordinateSystem, FloatArray
from firmware_agent.wire.digits import ascii_int, is_ascii_digits


class SatscanFormatError(ValueError):
    """A SaTScan file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class CaseRecord:
    """A count of cases at one location on one day."""

    location_id: str
    count: int
    day: dt.date
    line: int = field(default=0, compare=False)
    """Line of the file it came from (0 when made in memory), for error messages."""


@dataclass(frozen=True)
class Location:
    """A location id and its coordinates, as in a .geo file."""

    location_id: str
    coords: tuple[float, ...]


def parse_date(text: str) -> dt.date:
    """Parse YYYY/MM/DD (SaTScan) or YYYY-MM-DD; months and days may lack a zero."""
    parts = text.replace("-", "/").split("/")
    if len(parts) != 3 or not all(is_ascii_digits(p) for p in parts):
        raise ValueError(f"date {text!r} is not YYYY/MM/DD")
    return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))


def format_date(day: dt.date) -> str:
    """Format a date as SaTScan writes it (YYYY/MM/DD)."""
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) for each non-blank line of a text file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SatscanFormatError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise SatscanFormatError(f"{path}: cannot read ({exc.strerror})") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.replace(",", " ").split()
        if fields:
            yield number, fields


def read_cas(path: Path) -> list[CaseRecord]:
    """Read a case file: location id, number of cases, date (extra columns ignored)."""
    out: list[CaseRecord] = []
    for number, fields in _records(path):
        where = f"{path}, line {number}"
        if len(fields) < 3:
            raise SatscanFormatError(f"{where}: expected 'location count date', got {fields}")
        magnitude = ascii_int(fields[1].removeprefix("-"))
        if magnitude is None:
            raise SatscanFormatError(f"{where}: case count {fields[1]!r} is not a whole number")
        if fields[1].startswith("-") and magnitude:
            raise SatscanFormatError(f"{where}: case count -{magnitude} is negative")
        count = magnitude
        try:
            day = parse_date(fields[2])
        except ValueError as exc:
            raise SatscanFormatError(f"{where}: {exc}") from None
        out.append(CaseRecord(fields[0], count, day, number))
    return out


def read_geo(path: Path, system: CoordinateSystem = CoordinateSystem.LATLON) -> list[Location]:
    """Read a coordinates file: location id then latitude and longitude (or x y ...)."""
    out: list[Location] = []
    seen: dict[str, int] = {}
    dims: int | None = None
    for number, fields in _records(path):
        where = f"{path}, line {number}"
        if len(fields) < 3:
            raise SatscanFormatError(f"{where}: expected 'location y x', got {fields}")
        try:
            coords = tuple(float(f) for f in fields[1:])
        except ValueError:
            raise SatscanFormatError(f"{where}: coordinates {fields[1:]} are not numbers") from None
        if not all(math.isfinite(c) for c in coords):
            raise SatscanFormatError(f"{where}: coordinates must be finite")
        if system is CoordinateSystem.LATLON:
            if len(coords) != 2:
                raise SatscanFormatError(f"{where}: expected latitude and longitude only")
            if abs(coords[0]) > 90 or abs(coords[1]) > 180:
                raise SatscanFormatError(f"{where}: latitude/longitude {coords} out of range")
        if dims is None:
            dims = len(coords)
        elif len(coords) != dims:
            raise SatscanFormatError(f"{where}: {len(coords)} coordinates, earlier lines {dims}")
        if fields[0] in seen:
            raise SatscanFormatError(
                f"{where}: location {fields[0]!r} already given on line {seen[fields[0]]}"
            )
        seen[fields[0]] = number
        out.append(Location(fields[0], coords))
    if not out:
        raise SatscanFormatError(f"{path}: no locations")
    return out


def read_prm(path: Path) -> dict[str, str]:
    """Read a SaTScan parameter file into {key: value}, comments and sections dropped."""
    out: dict[str, str] = {}
    for number, fields in _raw_lines(path):
        if fields.startswith((";", "[")) or "=" not in fields:
            continue
        key, _, value = fields.partition("=")
        if not key.strip():
            raise SatscanFormatError(f"{path}, line {number}: parameter without a name")
        out[key.strip()] = value.strip()
    return out


def prm_int(params: Mapping[str, str], key: str, default: int) -> int:
    """Return parameter ``key`` as a whole number, ``default`` when it is absent."""
    value = params.get(key)
    if value is None:
        return default
    number = ascii_int(value)
    if number is None:
        raise SatscanFormatError(f"parameter {key}={value!r} is not a whole number")
    return number


def _raw_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, stripped line) for each non-blank line."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise SatscanFormatError(f"{path}: cannot read ({exc.strerror})") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def cas_text(records: Iterable[CaseRecord]) -> str:
    """Return a case file SaTScan reads (tab-separated, YYYY/MM/DD)."""
    return "".join(f"{r.location_id}\t{r.count}\t{format_date(r.day)}\n" for r in records)


def geo_text(locations: Iterable[Location]) -> str:
    """Return a coordinates file SaTScan reads (id, then latitude longitude or x y)."""
    return "".join(
        # repr() is the shortest text that reads back to the same float, so a
        # round trip through the file cannot move a location across a tie.
        loc.location_id + "".join(f"\t{float(c)!r}" for c in loc.coords) + "\n"
        for loc in locations
    )


def write_cas(path: Path, records: Iterable[CaseRecord]) -> None:
    """Write a case file SaTScan reads."""
    path.write_text(cas_text(records), encoding="utf-8")


def write_geo(path: Path, locations: Iterable[Location]) -> None:
    """Write a coordinates file SaTScan reads."""
    path.write_text(geo_text(locations), encoding="utf-8")


@dataclass(frozen=True)
class CaseMatrix:
    """Cases as a location x day matrix over a study period."""

    counts: IntMatrix
    start: dt.date
    outside_period: int
    """Cases dated outside the study period, left out."""


def case_matrix(
    records: Iterable[CaseRecord],
    locations: list[Location],
    start: dt.date,
    end: dt.date,
) -> CaseMatrix:
    """Tally case records by location and day; an unknown location is an error."""
    if end < start:
        raise ValueError(f"study end {end} is before its start {start}")
    index = {loc.location_id: i for i, loc in enumerate(locations)}
    n_days = (end - start).days + 1
    counts = np.zeros((len(locations), n_days), dtype=np.int64)
    outside = 0
    for rec in records:
        if rec.location_id not in index:
            raise SatscanFormatError(
                f"case file, line {rec.line}: location {rec.location_id!r} is not in the "
                "coordinates file"
            )
        offset = (rec.day - start).days
        if not 0 <= offset < n_days:
            outside += rec.count
            continue
        counts[index[rec.location_id], offset] += rec.count
    return CaseMatrix(counts, start, outside)


def coordinates(locations: list[Location]) -> FloatArray:
    """Return the locations' coordinates as a float array, one row per location."""
    return np.array([loc.coords for loc in locations], dtype=np.float64)
