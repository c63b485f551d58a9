"""Named areas: their outlines and names, so maps can say where things are without basemap tiles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from backend.api.deps import PrincipalDep, SessionDep
from backend.areas.store import stored_shapes
from backend.auth.scope import sees_machine_area

router = APIRouter(prefix="/areas", tags=["areas"])

GEOJSON = "application/geo+json"


@router.get("", response_class=JSONResponse, responses={200: {"content": {GEOJSON: {}}}})
def list_areas(session: SessionDep, principal: PrincipalDep) -> JSONResponse:
    """Return the named areas the caller's machines may stand in, as a FeatureCollection.

    Outlines and names only: counts are the statistics and exports routes' business,
    which suppress small ones.
    """
    features: list[dict[str, Any]] = [
        {"type": "Feature", "geometry": shape.geometry, "properties": {"name": shape.name}}
        for shape in stored_shapes(session)
        if sees_machine_area(principal, shape.name)
    ]
    return JSONResponse({"type": "FeatureCollection", "features": features}, media_type=GEOJSON)
