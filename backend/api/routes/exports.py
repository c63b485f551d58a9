"""Exports for officials: dispenses by area and period (suppressed), SaTScan files (health)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from sqlmodel import Session

from backend.api.deps import PrincipalDep, SessionDep, SettingsDep
from backend.api.problems import problem_responses
from backend.areas.store import stored_shapes
from backend.auth.principal import Principal, Role
from backend.auth.scope import sees_machine_area
from backend.config import Settings
from backend.hotspots.export import satscan_texts
from backend.hotspots.store import load_sites, naloxone_products
from backend.stats.city import city_zone, hotspot_settings
from backend.stats.dispenses import Bucket, Group, check_range, count_dispenses
from backend.stats.exports import csv_text, geojson
from backend.stats.table import Published, publish

router = APIRouter(prefix="/exports", tags=["exports"])

GEOJSON = "application/geo+json"
CSV = "text/csv"
TEXT = "text/plain"
Period = Literal["day", "week"]
FirstDay = Annotated[dt.date, Query(alias="from", description="First day (the city's)")]
LastDay = Annotated[dt.date, Query(alias="to", description="Last day, included")]


def _text(media_type: str) -> dict[int | str, dict[str, object]]:
    return {200: {"content": {media_type: {"schema": {"type": "string"}}}},
            **problem_responses(422)}


def _published(session: Session, principal: Principal, settings: Settings, first: dt.date,
               last: dt.date, period: Period) -> Published:
    """Count naloxone dispenses by area and period, suppressed for all but admin."""
    bucket = Bucket(period)
    try:
        check_range(first, last, bucket)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    table = count_dispenses(
        session, principal=principal, first=first, last=last, bucket=bucket, group=Group.AREA,
        zone=city_zone(settings),
        products=naloxone_products(session, hotspot_settings(settings)),
    )
    # Every area the caller may see gets a row, dispenses or not.
    visible = [s.name for s in stored_shapes(session) if sees_machine_area(principal, s.name)]
    missing = sorted(set(visible) - set(table.groups))
    table.groups.extend(missing)
    table.counts.extend([0] * len(table.buckets) for _ in missing)
    order = sorted(range(len(table.groups)), key=lambda i: table.groups[i])
    table.groups[:] = [table.groups[i] for i in order]
    table.counts[:] = [table.counts[i] for i in order]
    k = None if principal.role is Role.ADMIN else settings.stats_suppression_k
    return publish(table, k)


@router.get("/dispenses.csv", response_class=Response, responses=_text(CSV))
def dispenses_csv(session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
                  first: FirstDay, last: LastDay, period: Period = "week") -> Response:
    """Naloxone dispenses by area and day or week as CSV; small counts suppressed."""
    body = csv_text(_published(session, principal, settings, first, last, period))
    return Response(body, media_type=CSV, headers={
        "Content-Disposition": f'attachment; filename="dispenses-{first}-{last}.csv"'})


@router.get("/dispenses.geojson", response_class=Response,
            responses={200: {"content": {GEOJSON: {}}}, **problem_responses(422)})
def dispenses_geojson(session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
                      first: FirstDay, last: LastDay, period: Period = "week") -> Response:
    """Naloxone dispenses by area and day or week, on the area polygons; small counts suppressed."""
    published = _published(session, principal, settings, first, last, period)
    shapes = {s.name: s.geometry for s in stored_shapes(session)}
    return Response(json.dumps(geojson(published, shapes, period)), media_type=GEOJSON)


def _satscan(session: Session, principal: Principal, settings: Settings, end: dt.date
             ) -> tuple[str, str]:
    if not (dt.date(2000, 1, 1) <= end <= dt.date(2100, 12, 31)):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "end must lie between 2000-01-01 and 2100-12-31")
    sites = [s for s in load_sites(session) if sees_machine_area(principal, s.area)]
    cas, geo, _ = satscan_texts(session, hotspot_settings(settings), today=end, sites=sites)
    return cas, geo


EndDay = Annotated[dt.date, Query(description="Last day of the study period")]


@router.get("/satscan.cas", response_class=Response, responses=_text(TEXT))
def satscan_cas(session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
                end: EndDay) -> Response:
    """SaTScan case file (machine, count, date) of the study period ending ``end``."""
    return Response(_satscan(session, principal, settings, end)[0], media_type=TEXT)


@router.get("/satscan.geo", response_class=Response, responses=_text(TEXT))
def satscan_geo(session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
                end: EndDay) -> Response:
    """SaTScan coordinates file (machine, latitude, longitude) of the caller's machines."""
    return Response(_satscan(session, principal, settings, end)[1], media_type=TEXT)
