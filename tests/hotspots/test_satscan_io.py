"""SaTScan case, coordinate and parameter files: round trips and clear errors."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from backend.hotspots import satscan_io as io
from backend.hotspots.geometry import CoordinateSystem

DATA = Path(__file__).parent.parent / "data" / "satscan-nycfever"


def test_reads_the_real_sample_files() -> None:
    cases = io.read_cas(DATA / "NYCfever.cas")
    locations = io.read_geo(DATA / "NYCfever.geo")
    assert sum(c.count for c in cases) == 194
    assert cases[0] == io.CaseRecord("11229", 1, dt.date(2001, 11, 22))
    assert len(locations) == 192
    assert locations[0] == io.Location("10001", (40.75037, -73.99674))
    params = io.read_prm(DATA / "NYCSpaceTimePermutation.prm")
    assert params["ModelType"] == "2"
    assert params["MaxTemporalSize"] == "7"


def test_round_trip(tmp_path: Path) -> None:
    cases = [io.CaseRecord("m-1", 2, dt.date(2026, 1, 3)), io.CaseRecord("m-2", 1,
                                                                        dt.date(2026, 1, 4))]
    locations = [io.Location("m-1", (40.5, -73.9)), io.Location("m-2", (40.51, -73.91))]
    io.write_cas(tmp_path / "x.cas", cases)
    io.write_geo(tmp_path / "x.geo", locations)
    assert (tmp_path / "x.cas").read_text().splitlines()[0] == "m-1\t2\t2026/01/03"
    assert io.read_cas(tmp_path / "x.cas") == cases
    assert io.read_geo(tmp_path / "x.geo") == locations
    matrix = io.case_matrix(cases, locations, dt.date(2026, 1, 1), dt.date(2026, 1, 3))
    assert matrix.counts.tolist() == [[0, 0, 2], [0, 0, 0]]
    assert matrix.outside_period == 1


@pytest.mark.parametrize(("content", "message"), [
    ("a 1 2001/11/01\nb x 2001/11/02\n", "line 2: case count 'x'"),
    ("a 1 2001/11/01\n\nb 1 2001/13/02\n", "line 3: month must be in 1..12"),
    ("a 1 2001-11-01\nb 1\n", "line 2: expected 'location count date'"),
    ("a -3 2001/11/01\n", "line 1: case count -3 is negative"),
    ("a 1 yesterday\n", "line 1: date 'yesterday' is not YYYY/MM/DD"),
    # str.isdigit() takes "²" and int() then fails; int() takes "٣" as 3 and "1_0" as 10.
    ("a 1 2001/11/0\u00b2\n", "line 1: date '2001/11/0\u00b2' is not YYYY/MM/DD"),
    ("a \u0663 2001/11/01\n", "line 1: case count '\u0663' is not a whole number"),
    ("a 1_0 2001/11/01\n", "line 1: case count '1_0' is not a whole number"),
    ("a +3 2001/11/01\n", "line 1: case count '\\+3' is not a whole number"),
])
def test_bad_case_files_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.cas"
    path.write_text(content)
    with pytest.raises(io.SatscanFormatError, match=message):
        io.read_cas(path)


@pytest.mark.parametrize(("content", "message"), [
    ("a 40 -73\na 41 -73\n", "line 2: location 'a' already given on line 1"),
    ("a 40 -73\nb 95 -73\n", "line 2: latitude/longitude .* out of range"),
    ("a 40 north\n", "line 1: coordinates .* are not numbers"),
    ("a 40\n", "line 1: expected 'location y x'"),
    ("", "no locations"),
])
def test_bad_geo_files_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.geo"
    path.write_text(content)
    with pytest.raises(io.SatscanFormatError, match=message):
        io.read_geo(path)


def test_cartesian_geo_files(tmp_path: Path) -> None:
    path = tmp_path / "xy.geo"
    path.write_text("a 1.5 2\r\nb 3 4\r\n")
    assert io.read_geo(path, CoordinateSystem.CARTESIAN)[1].coords == (3.0, 4.0)


def test_unknown_location_in_case_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.cas"
    path.write_text("a 1 2001/11/01\nzz 1 2001/11/01\n")
    with pytest.raises(io.SatscanFormatError, match="line 2: location 'zz'"):
        io.case_matrix(io.read_cas(path), [io.Location("a", (0.0, 0.0))],
                       dt.date(2001, 11, 1), dt.date(2001, 11, 2))


def test_binary_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.cas"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(io.SatscanFormatError, match="not UTF-8"):
        io.read_cas(path)


def test_cli_reports_a_bad_file_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cas"
    bad.write_text("11229 1 2001/11/22\n11208 one 2001/11/13\n")
    done = subprocess.run(
        [sys.executable, "-c", "from backend.cli import main; main()", "hotspots", "scan",
         "--cas", str(bad), "--geo", str(DATA / "NYCfever.geo"),
         "--start", "2001/11/01", "--end", "2001/11/24", "--replicates", "9"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2
    assert "line 2: case count 'one'" in done.stderr
    assert "Traceback" not in done.stderr


def test_whole_number_parameters_are_ascii_digits() -> None:
    assert io.prm_int({"MaxTemporalSize": "14"}, "MaxTemporalSize", 7) == 14
    assert io.prm_int({}, "MaxTemporalSize", 7) == 7
    for bad in ("\u0667", " 1_4", "14 days", "-1"):
        with pytest.raises(io.SatscanFormatError, match=r"=.* is not a whole number"):
            io.prm_int({"MaxTemporalSize": bad}, "MaxTemporalSize", 7)
