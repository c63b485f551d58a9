"""The public locator feed: no credential, cached, the same bytes for everyone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse

from backend.api.deps import PublicFeedDep
from backend.public.cache import (
    FeedSnapshot,
    FeedUnavailableError,
    Representation,
    accepts_gzip,
    etag_matches,
)
from backend.public.schemas import PublicFeatureCollection, PublicMachines

router = APIRouter(prefix="/public/v1", tags=["public"])

GEOJSON = "application/geo+json"
CONDITIONAL: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the ETag sent in If-None-Match is still current"},
    503: {"description": "The feed cannot be read from the database just now"},
}


def _serve(request: Request, rep: Representation, media_type: str) -> Response:
    max_age = request.app.state.settings.public_feed_max_age_s
    compressed = accepts_gzip(request.headers.get("accept-encoding"))
    chosen = rep.gzip if compressed else rep.identity
    headers = {"ETag": chosen.etag, "Cache-Control": f"public, max-age={max_age}",
               "Vary": "Accept-Encoding"}
    if etag_matches(request.headers.get("if-none-match"), chosen.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if compressed:
        headers["Content-Encoding"] = "gzip"
    return Response(chosen.body, media_type=media_type, headers=headers)


async def _snapshot(feed: PublicFeedDep) -> FeedSnapshot:
    try:
        return await feed.get()
    except FeedUnavailableError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc),
                            headers={"Retry-After": str(max(1, round(feed.ttl_s)))}) from None


@router.get("/machines", response_model=PublicMachines, responses=CONDITIONAL)
async def public_machines(request: Request, feed: PublicFeedDep) -> Response:
    """List the machines in service and whether naloxone can be had at each now."""
    return _serve(request, (await _snapshot(feed)).json, "application/json")


class GeoJSONResponse(JSONResponse):
    """A response documented and sent as ``application/geo+json``.

    A JSONResponse, so that the OpenAPI document shows the response model's
    schema, not a bare string.
    """

    media_type = GEOJSON


@router.get("/machines.geojson", response_model=PublicFeatureCollection,
            response_class=GeoJSONResponse, responses=CONDITIONAL)
async def public_machines_geojson(request: Request, feed: PublicFeedDep) -> Response:
    """List the same machines as GeoJSON points for community maps."""
    return _serve(request, (await _snapshot(feed)).geojson, GEOJSON)
