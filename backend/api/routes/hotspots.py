"""Overdose hotspots: current areas as GeoJSON for the console and officials' tools."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlmodel import col, select

from backend.api.deps import PrincipalDep, SessionDep
from backend.auth.scope import alert_filter
from backend.hotspots.geojson import feature_collection
from backend.models import Alert, AlertStatus, AlertType

router = APIRouter(prefix="/hotspots", tags=["hotspots"])

GEOJSON = "application/geo+json"


@router.get("", response_class=JSONResponse, responses={200: {"content": {GEOJSON: {}}}})
def list_hotspots(
    session: SessionDep,
    principal: PrincipalDep,
    include_resolved: Annotated[bool, Query(description="Also return closed hotspots")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSONResponse:
    """Return hotspot areas (centre, radius, counts, p-value) as a FeatureCollection."""
    query = select(Alert).where(
        Alert.type == AlertType.OVERDOSE_HOTSPOT.value, alert_filter(principal, session)
    )
    if not include_resolved:
        query = query.where(Alert.status != AlertStatus.RESOLVED.value)
    alerts = session.exec(query.order_by(col(Alert.opened_at).desc()).limit(limit)).all()
    body: dict[str, Any] = feature_collection(alerts)
    return JSONResponse(body, media_type=GEOJSON)
