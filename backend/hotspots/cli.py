"""``nx-backend hotspots ...``: run the detectors on SaTScan-format files."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import Engine

from backend.hotspots import satscan_io
from backend.hotspots.geometry import CoordinateSystem, to_points
from backend.hotspots.report import cluster_dict, clusters_text
from backend.hotspots.stpscan import ScanSettings, scan

app = typer.Typer(help="Overdose-hotspot scans.", no_args_is_help=True)


class OutputFormat(StrEnum):
    """How scan results are printed."""

    TEXT = "text"
    JSON = "json"


def _date(value: str | None, name: str) -> dt.date | None:
    """Parse an optional YYYY/MM/DD option, naming it in the error."""
    if value is None:
        return None
    try:
        return satscan_io.parse_date(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from None


def _fail(message: str) -> typer.Exit:
    """Print an error for a person and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@app.command("scan")
def scan_command(
    cas: Annotated[Path, typer.Option(help="SaTScan case file (location, cases, date).")],
    geo: Annotated[Path, typer.Option(help="SaTScan coordinates file.")],
    start: Annotated[str | None, typer.Option(help="Study start, YYYY/MM/DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Study end, YYYY/MM/DD.")] = None,
    prm: Annotated[
        Path | None,
        typer.Option(
            help="SaTScan parameter file giving defaults for the study period and windows."
        ),
    ] = None,
    radius_km: Annotated[float | None, typer.Option(help="Largest circle radius, km.")] = None,
    max_share: Annotated[
        float | None,
        typer.Option(help="Largest share of all cases inside one circle, percent (at most 50)."),
    ] = None,
    max_days: Annotated[int | None, typer.Option(help="Longest time window, days.")] = None,
    replicates: Annotated[int, typer.Option(help="Monte Carlo replicates.")] = 999,
    seed: Annotated[int, typer.Option(help="Seed of the date permutations.")] = 12345,
    retrospective: Annotated[
        bool, typer.Option(help="Scan all windows, not only those ending on the last day.")
    ] = False,
    coordinates: Annotated[
        CoordinateSystem,
        typer.Option(help="latlon: latitude then longitude in degrees; cartesian: x y in km."),
    ] = CoordinateSystem.LATLON,
    max_clusters: Annotated[int, typer.Option(help="Most clusters to report.")] = 10,
    workers: Annotated[int, typer.Option(help="Threads for the replicates.")] = 1,
    output_format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.TEXT,
) -> None:
    """Run the space-time permutation scan on a case and a coordinates file."""
    try:
        params = satscan_io.read_prm(prm) if prm else {}
        start_day = _date(start, "--start") or _date(params.get("StartDate"), "StartDate")
        end_day = _date(end, "--end") or _date(params.get("EndDate"), "EndDate")
        if start_day is None or end_day is None:
            raise _fail("give --start and --end (or a --prm file that has them)")
        radius = radius_km
        if radius is None and params.get("UseDistanceFromCenterOption", "n") == "y":
            radius = float(params["MaxSpatialSizeInDistanceFromCenter"])
        share = (
            max_share
            if max_share is not None
            else float(params.get("MaxSpatialSizeInPopulationAtRisk", "50"))
        )
        days = (
            max_days if max_days is not None else satscan_io.prm_int(params, "MaxTemporalSize", 7)
        )
        settings = ScanSettings(
            max_radius_km=radius,
            max_share=share / 100.0,
            max_days=days,
            prospective=not retrospective,
            replicates=replicates,
            seed=seed,
            max_clusters=max_clusters,
            workers=workers,
        )
        locations = satscan_io.read_geo(geo, coordinates)
        matrix = satscan_io.case_matrix(satscan_io.read_cas(cas), locations, start_day, end_day)
        points = to_points(satscan_io.coordinates(locations), coordinates)
        result = scan(matrix.counts, points, settings)
    except (satscan_io.SatscanFormatError, ValueError, KeyError) as exc:
        raise _fail(str(exc)) from None
    rows = [cluster_dict(c, locations, start_day, i + 1) for i, c in enumerate(result.clusters)]
    if output_format is OutputFormat.JSON:
        doc = {
            "study": {
                "start": satscan_io.format_date(start_day),
                "end": satscan_io.format_date(end_day),
                "days": result.n_days,
                "total_cases": result.total_cases,
                "cases_outside_period": matrix.outside_period,
                "locations": len(locations),
                "analysis": "retrospective" if retrospective else "prospective",
                "max_radius_km": radius,
                "max_share_percent": share,
                "max_days": days,
                "replicates": replicates,
                "seed": seed,
            },
            "clusters": rows,
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(clusters_text(rows), nl=False)


def _engine() -> Engine:
    """Open the backend database named by NX_DATABASE_URL, refusing an old schema."""
    from backend.config import get_settings
    from backend.db import check_schema, make_engine

    engine = make_engine(get_settings().database_url,
                         dead_link_s=get_settings().database_dead_link_s)
    check_schema(engine)
    return engine


@app.command("job")
def job_command(
    once: Annotated[bool, typer.Option(help="Run one scan and exit.")] = False,
    day: Annotated[
        str | None,
        typer.Option(help="With --once: scan as at the end of this day, YYYY/MM/DD (default now)."),
    ] = None,
) -> None:
    """Run the scheduled hotspot scan over the database (settings: NX_HOTSPOT_*)."""
    from backend.db import SchemaOutOfDateError
    from backend.hotspots.settings import HotspotSettings
    from backend.hotspots.store import run_hotspot_job

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        engine = _engine()
    except SchemaOutOfDateError as exc:
        raise _fail(str(exc)) from None
    settings = HotspotSettings()
    if once:
        as_of = _date(day, "--day")
        now = None
        if as_of is not None:
            midnight = dt.datetime.combine(
                as_of + dt.timedelta(days=1), dt.time.min, ZoneInfo(settings.timezone)
            )
            now = midnight - dt.timedelta(seconds=1)
        typer.echo(json.dumps(asdict(run_hotspot_job(engine, settings, now=now))))
        return
    # The same job as in `serve`: one run per period across every process (backend/jobs).
    from backend.config import get_settings
    from backend.jobs import Coordinator, make_locks
    from backend.jobs.catalog import hotspot_job

    coordinator = Coordinator(engine, make_locks(
        get_settings().database_url, dead_link_s=get_settings().database_dead_link_s),
                              jobs=[hotspot_job(engine)],
                              poll_s=get_settings().jobs_poll_s)
    coordinator.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        coordinator.stop()


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option(help="Folder for <prefix>.cas and <prefix>.geo.")],
    end: Annotated[str | None, typer.Option(help="Last day, YYYY/MM/DD (default today).")] = None,
    prefix: Annotated[str, typer.Option(help="File name stem.")] = "naloxnet",
) -> None:
    """Write the study period's naloxone dispenses as SaTScan case and coordinate files."""
    from backend.db import SchemaOutOfDateError
    from backend.hotspots.export import export_satscan
    from backend.hotspots.settings import HotspotSettings

    try:
        engine = _engine()
    except SchemaOutOfDateError as exc:
        raise _fail(str(exc)) from None
    last = _date(end, "--end") or dt.datetime.now(dt.UTC).date()
    cas, geo, cases = export_satscan(engine, HotspotSettings(), out, today=last, prefix=prefix)
    typer.echo(f"wrote {cases} cases to {cas} and the machines to {geo}")
