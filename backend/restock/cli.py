"""``nx-backend restock plan``: the same plan as ``GET /api/v1/restock/plan``, as JSON."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from backend.config import get_settings
from backend.db import SchemaOutOfDateError, check_schema, make_engine
from backend.forecast.settings import ForecastSettings
from backend.restock.inputs import parse_depot, shift_start_of

app = typer.Typer(help="Restock plans: van routes and what to load.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


@app.command("plan")
def plan(
    depot: Annotated[str, typer.Option(help="Where the vans start and end: LAT,LON.")],
    shift_start: Annotated[str | None, typer.Option(
        help="When the vans leave (ISO 8601; no offset means UTC; default now).")] = None,
    shift_hours: Annotated[float, typer.Option(min=0.25, max=24, help="Shift length, hours.")
                           ] = 8,
    vans: Annotated[int, typer.Option(min=1, max=50, help="Vans on the road.")] = 1,
    van_capacity: Annotated[int | None, typer.Option(
        min=1, max=100_000, help="Items a van carries (default NX_RESTOCK_VAN_CAPACITY).")
    ] = None,
) -> None:
    """Print the restock plan for one shift over every active machine, as JSON."""
    try:
        point = parse_depot(depot)
        start = shift_start_of(None if shift_start is None else datetime.fromisoformat(
            shift_start))
    except ValueError as exc:
        raise _fail(str(exc), code=2) from None
    # The planner pulls in OR-Tools and the forecast SciPy (over a second of imports):
    # loaded here, so every other nx-backend command starts without them.
    from backend.restock.forecast_input import forecast_extras
    from backend.restock.lots_input import combined, lot_extras
    from backend.restock.plan import MatrixFileError, plan_shift

    settings = get_settings()
    engine = make_engine(settings.database_url,
                         dead_link_s=settings.database_dead_link_s)
    try:
        check_schema(engine)
        with Session(engine) as session:
            forecast = ForecastSettings()
            extras = combined(
                forecast_extras(session, shift_start=start, shift_hours=shift_hours,
                                settings=forecast),
                lot_extras(session, settings=settings))
            result = plan_shift(session, settings, depot=point, start=start, hours=shift_hours,
                                vans=vans, van_capacity=van_capacity, extras=extras,
                                next_shift=start + timedelta(hours=forecast.horizon_h))
    except (SchemaOutOfDateError, MatrixFileError) as exc:
        raise _fail(str(exc), code=2) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database: {exc.__class__.__name__}: {exc}") from None
    finally:
        engine.dispose()
    typer.echo(result.model_dump_json(indent=2))
