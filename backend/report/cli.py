"""``nx-backend report weekly``: the weekly situation report as one HTML file, written or sent."""

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
    out: Annotated[Path | None, typer.Option(help="HTML file to write")] = None,
    send: Annotated[bool, typer.Option(
        "--send", help="Queue it for every notification route listing report.weekly")] = False,
    weeks: Annotated[int, typer.Option(min=2, max=104, help="Weeks of trend")] = 8,
) -> None:
    """Write (--out) or send (--send) the week ending END: map, trends, clusters, empty machines."""
    from backend.config import get_settings
    from backend.db import check_schema, make_engine, session_scope
    from backend.models.types import utcnow
    from backend.report.send import build, queue_report, report_routes

    if out is None and not send:
        raise typer.BadParameter("say --out FILE, --send or both", param_hint="--out/--send")
    last = _day(end)
    settings = get_settings()
    engine = make_engine(settings.database_url,
                         dead_link_s=settings.database_dead_link_s)
    now = utcnow()
    try:
        check_schema(engine)
        with session_scope(engine) as session:
            report, page = build(session, settings, end=last, now=now, weeks=weeks)
            routes = report_routes(session) if send else []
            queued = queue_report(session, routes, report, page, now=now)
    finally:
        engine.dispose()
    if out is not None:
        try:
            out.write_text(page, encoding="utf-8")
        except OSError as exc:
            typer.echo(f"error: cannot write {out}: {exc}", err=True)
            raise typer.Exit(code=2) from None
        typer.echo(f"{out}: week {report.start} to {report.end}, {len(report.hotspots)} "
                   f"clusters, {len(report.empty)} machines out of naloxone")
    if send:
        if not queued:
            typer.echo("error: no enabled notification route lists report.weekly; nothing sent",
                       err=True)
            raise typer.Exit(code=1)
        names = ", ".join(r.name for r in routes)
        typer.echo(f"week {report.start} to {report.end} queued for {queued} routes ({names}); "
                   "the dispatcher of nx-backend serve or nx-backend notify delivers it")
