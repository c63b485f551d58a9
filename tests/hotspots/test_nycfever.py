"""SaTScan's own NYCfever sample: the published clusters must come out to six decimals."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.hotspots import satscan_io
from backend.hotspots.geometry import CoordinateSystem, to_points
from backend.hotspots.report import cluster_dict, clusters_text
from backend.hotspots.stpscan import ScanResult, ScanSettings, scan

DATA = Path(__file__).parent.parent / "data" / "satscan-nycfever"
NX_BACKEND = [sys.executable, "-c", "from backend.cli import main; main()"]
"""The nx-backend command, run the way its entry point runs it."""
NYC_11418 = ["11418", "11415", "11419", "11435", "11416", "11421", "11451", "11375", "11417"]


@pytest.fixture(scope="module")
def nyc() -> tuple[list[satscan_io.Location], ScanResult, dt.date]:
    """Run the published prospective analysis (3 km, 7 days, end 2001/11/24) once."""
    params = satscan_io.read_prm(DATA / "NYCSpaceTimePermutation.prm")
    start = satscan_io.parse_date(params["StartDate"])
    locations = satscan_io.read_geo(DATA / "NYCfever.geo")
    cases = satscan_io.read_cas(DATA / "NYCfever.cas")
    matrix = satscan_io.case_matrix(cases, locations, start, dt.date(2001, 11, 24))
    points = to_points(satscan_io.coordinates(locations), CoordinateSystem.LATLON)
    settings = ScanSettings(max_radius_km=3.0, max_days=7, replicates=999, seed=20011124)
    return locations, scan(matrix.counts, points, settings), start


def test_study_matches_the_parameter_file(nyc: tuple[list[satscan_io.Location], ScanResult,
                                                     dt.date]) -> None:
    _, result, start = nyc
    assert start == dt.date(2001, 11, 1)
    assert result.total_cases == 194
    assert result.n_days == 24


def test_most_likely_cluster_matches_satscan(
    nyc: tuple[list[satscan_io.Location], ScanResult, dt.date],
) -> None:
    locations, result, start = nyc
    top = result.clusters[0]
    assert locations[top.centre].location_id == "11418"
    assert [locations[i].location_id for i in top.locations] == NYC_11418
    assert start + dt.timedelta(days=top.start_day) == dt.date(2001, 11, 22)
    assert start + dt.timedelta(days=top.end_day) == dt.date(2001, 11, 24)
    assert top.observed == 4
    assert round(top.expected, 2) == 0.67
    assert f"{top.llr:.6f}" == "3.845418"
    assert top.radius_km <= 3.0


def test_secondary_clusters_match_satscan(
    nyc: tuple[list[satscan_io.Location], ScanResult, dt.date],
) -> None:
    locations, result, start = nyc
    second, third = result.clusters[1], result.clusters[2]
    assert [locations[i].location_id for i in second.locations] == ["11372"]
    assert second.start_day == second.end_day == (dt.date(2001, 11, 24) - start).days
    assert second.observed == 2
    assert f"{second.llr:.6f}" == "3.164201"
    assert [locations[i].location_id for i in third.locations] == ["10472"]
    assert start + dt.timedelta(days=third.start_day) == dt.date(2001, 11, 23)
    assert start + dt.timedelta(days=third.end_day) == dt.date(2001, 11, 24)
    assert f"{third.llr:.6f}" == "2.137259"
    # Secondary clusters never share a location with a better one.
    seen: set[int] = set()
    for cluster in result.clusters:
        assert not seen.intersection(cluster.locations)
        seen.update(cluster.locations)


def test_p_values_are_consistent_with_satscan(
    nyc: tuple[list[satscan_io.Location], ScanResult, dt.date],
) -> None:
    _, result, _ = nyc
    top, second, third = result.clusters[:3]
    assert top.p_value is not None
    assert second.p_value is not None
    assert third.p_value is not None
    # Not significant, as SaTScan says; Monte Carlo noise allows ~0.2 either way.
    assert 0.05 < top.p_value < 0.5
    assert top.p_value < second.p_value < third.p_value
    assert third.p_value > 0.7
    # p = rank / (R + 1), recurrence interval = 1 day / p.
    assert top.p_value * 1000 == pytest.approx(round(top.p_value * 1000))
    assert top.recurrence_days == pytest.approx(1 / top.p_value)


def test_cli_reports_the_published_clusters_as_json() -> None:
    cmd = [
        *NX_BACKEND, "hotspots", "scan",
        "--cas", str(DATA / "NYCfever.cas"), "--geo", str(DATA / "NYCfever.geo"),
        "--start", "2001/11/01", "--end", "2001/11/24", "--radius-km", "3",
        "--max-days", "7", "--replicates", "199", "--seed", "7", "--format", "json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["study"]["total_cases"] == 194
    first, second, third = doc["clusters"][:3]
    assert first["centre"] == "11418"
    assert first["locations"] == NYC_11418
    assert (first["start"], first["end"]) == ("2001/11/22", "2001/11/24")
    assert first["observed"] == 4
    assert f"{first['expected']:.2f}" == "0.67"
    assert f"{first['test_statistic']:.6f}" == "3.845418"
    assert 0.0 < first["p_value"] <= 1.0
    assert first["recurrence_interval_days"] == pytest.approx(1 / first["p_value"])
    assert second["locations"] == ["11372"]
    assert (second["start"], second["end"]) == ("2001/11/24", "2001/11/24")
    assert f"{second['test_statistic']:.6f}" == "3.164201"
    assert third["locations"] == ["10472"]
    assert f"{third['test_statistic']:.6f}" == "2.137259"


def test_cli_takes_the_study_from_the_parameter_file() -> None:
    cmd = [
        *NX_BACKEND, "hotspots", "scan",
        "--cas", str(DATA / "NYCfever.cas"), "--geo", str(DATA / "NYCfever.geo"),
        "--prm", str(DATA / "NYCSpaceTimePermutation.prm"), "--replicates", "9",
        "--format", "json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["study"]["start"] == "2001/11/01"
    assert doc["study"]["max_radius_km"] == 3.0
    assert f"{doc['clusters'][0]['test_statistic']:.6f}" == "3.845418"


def test_text_report_reads_like_satscan(
    nyc: tuple[list[satscan_io.Location], ScanResult, dt.date],
) -> None:
    locations, result, start = nyc
    rows = [cluster_dict(c, locations, start, i + 1) for i, c in enumerate(result.clusters)]
    text = clusters_text(rows)
    first = text.split("\n\n")[0]
    assert first.startswith("1. Most likely cluster")
    assert "Location IDs included.: " + ", ".join(NYC_11418) in first
    assert "Time frame............: 2001/11/22 to 2001/11/24" in first
    assert "Test statistic........: 3.845418" in first
    assert "2. Secondary cluster" in text
    assert clusters_text([]) == "No clusters were found.\n"
