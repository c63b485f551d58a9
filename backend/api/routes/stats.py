"""Dispense statistics: counts over time by area, product or machine (docs/hotspots.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from backend.api.deps import PrincipalDep, SessionDep, SettingsDep
from backend.api.problems import problem_responses
from backend.api.stats_schemas import DispenseSeries, DispenseStats, StatsToday
from backend.auth.principal import Role
from backend.stats.city import city_zone, hotspot_settings, stats_today
from backend.stats.dispenses import Bucket, Group, check_range, count_dispenses
from backend.stats.table import publish

router = APIRouter(prefix="/stats", tags=["stats"])

ProductCode = Annotated[str, Query(min_length=1, max_length=48)]


@router.get("/dispenses", response_model=DispenseStats, responses=problem_responses(422))
def dispense_stats(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    first: Annotated[dt.date, Query(alias="from", description="First day (the city's)")],
    last: Annotated[dt.date, Query(alias="to", description="Last day, included")],
    bucket: Bucket = Bucket.DAY,
    group: Group = Group.AREA,
    product: Annotated[list[ProductCode] | None, Query(
        max_length=20, description="Only these product codes (repeat the parameter)")] = None,
) -> DispenseStats:
    """Count successful dispenses per bucket and group; small counts hidden but for admin."""
    try:
        check_range(first, last, bucket)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    zone = city_zone(settings)
    table = count_dispenses(session, principal=principal, first=first, last=last,
                            bucket=bucket, group=group, zone=zone, products=product)
    k = None if principal.role is Role.ADMIN else settings.stats_suppression_k
    shown = publish(table, k)
    return DispenseStats(
        from_=first, to=last, bucket=bucket.value, group=group.value,
        timezone=zone.key, suppression_k=k, buckets=table.buckets,
        series=[DispenseSeries(key=key, counts=shown.cells[i], small=shown.small[i],
                               total=shown.row_totals[i])
                for i, key in enumerate(table.groups)],
        totals=shown.col_totals, total=shown.total,
    )


@router.get("/today", response_model=StatsToday)
def today(session: SessionDep, settings: SettingsDep) -> StatsToday:
    """Say which day "the last 28 days" ends on: today, or the newest dispense's day.

    The console's heat layer and trends count up to it, so an accelerated demo or
    a replay shows its own weeks rather than the empty ones of the wall clock.
    """
    hotspots = hotspot_settings(settings)
    return StatsToday(today=stats_today(session, settings), timezone=hotspots.timezone,
                      clock=hotspots.clock)
