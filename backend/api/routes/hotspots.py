"""Overdose hotspots: current areas as GeoJSON for the console and officials' tools."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import JSONResponse
from sqlmodel import col, select

from backend.api.deps import PrincipalDep, SessionDep, SettingsDep
from backend.api.hotspot_schemas import HotspotSeries
from backend.api.problems import problem_responses
from backend.api.schemas import RowId
from backend.auth.principal import Role
from backend.auth.scope import alert_filter, sees_alert
from backend.hotspots.geojson import feature_collection
from backend.hotspots.series import cluster_series
from backend.hotspots.store import naloxone_products
from backend.hotspots.wording import recurrence_sentence
from backend.models import Alert, AlertStatus, AlertType
from backend.stats.city import city_zone, hotspot_settings
from backend.stats.dispenses import CountTable
from backend.stats.table import publish

router = APIRouter(prefix="/hotspots", tags=["hotspots"])

GEOJSON = "application/geo+json"


@router.get("", response_class=JSONResponse, responses={200: {"content": {GEOJSON: {}}}})
def list_hotspots(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    include_resolved: Annotated[bool, Query(description="Also return closed hotspots")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSONResponse:
    """Return hotspot areas (centre, radius, counts, p-value) as a FeatureCollection.

    For everyone but admin an observed count under the suppression threshold is null.
    """
    query = select(Alert).where(
        Alert.type == AlertType.OVERDOSE_HOTSPOT.value, alert_filter(principal, session)
    )
    if not include_resolved:
        query = query.where(Alert.status != AlertStatus.RESOLVED.value)
    alerts = session.exec(query.order_by(col(Alert.opened_at).desc()).limit(limit)).all()
    k = None if principal.role is Role.ADMIN else settings.stats_suppression_k
    body: dict[str, Any] = feature_collection(
        alerts, k=k, replicates=hotspot_settings(settings).replicates)
    return JSONResponse(body, media_type=GEOJSON)


@router.get("/{alert_id}/series", response_model=HotspotSeries,
            responses=problem_responses(404))
def hotspot_series(
    alert_id: Annotated[RowId, Path()],
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> HotspotSeries:
    """Return the cluster's daily dispenses and expected level over the study period.

    Small counts (and one more in a row that would give them away) are null but for admin.
    """
    alert = session.get(Alert, alert_id)
    if (alert is None or alert.type != AlertType.OVERDOSE_HOTSPOT.value
            or not sees_alert(session, principal, alert)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no hotspot {alert_id}")
    hotspots = hotspot_settings(settings)
    zone = city_zone(settings)
    series = cluster_series(session, alert, study_days=hotspots.study_days,
                            products=naloxone_products(session, hotspots), zone=zone)
    k = None if principal.role is Role.ADMIN else settings.stats_suppression_k
    buckets = [dt.datetime.combine(d, dt.time.min, zone) for d in series.days]
    shown = publish(CountTable(buckets, ["cluster"], [series.observed]), k)
    details = alert.details or {}
    return HotspotSeries(
        alert_id=alert_id, detector=series.detector, timezone=zone.key, days=series.days,
        observed=shown.cells[0], small=shown.small[0], expected=series.expected,
        total=shown.row_totals[0], window_start=series.window_start,
        window_end=series.window_end, suppression_k=k,
        explanation=recurrence_sentence(
            _number(details.get("p_value")), _number(details.get("recurrence_interval_days")),
            replicates=hotspots.replicates, detector=series.detector),
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
