"""``nx-backend report weekly``: the weekly situation report as one HTML file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Situation reports for health officials.", no_args_is_help=True)


def _day(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if not dt.date(2000, 1, 1) <= day <= dt.date(2100, 12, 31):
        raise typer.BadParameter("the date must lie between 2000 and 2100")
    return day


@app.command("weekly")
def weekly_command(
    end: Annotated[str, typer.Option(help="Last day of the week reported (YYYY-MM-DD)")],
    out: Annotated[Path, typer.Option(help="HTML file to write")],
    weeks: Annotated[int, typer.Option(min=2, max=104, help="Weeks of trend")] = 8,
) -> None:
    """Write the week ending END: map, trends, clusters in plain words, empty machines."""
    from backend.config import get_settings
    from backend.db import check_schema, make_engine, session_scope
    from backend.models.types import utcnow
    from backend.report.html import render
    from backend.report.weekly import weekly_report
    from backend.stats.city import hotspot_settings

    last = _day(end)
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        check_schema(engine)
        with session_scope(engine) as session:
            report = weekly_report(session, end=last, weeks=weeks,
                                   k=settings.stats_suppression_k,
                                   hotspots=hotspot_settings(settings))
    finally:
        engine.dispose()
    try:
        out.write_text(render(report, generated_at=utcnow()), encoding="utf-8")
    except OSError as exc:
        typer.echo(f"error: cannot write {out}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"{out}: week {report.start} to {report.end}, {len(report.hotspots)} clusters, "
               f"{len(report.empty)} machines out of naloxone")
