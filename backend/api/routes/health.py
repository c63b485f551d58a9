"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend.api.deps import EngineDep, RegistryDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Whether the API can serve: "ok", or "error" with what failed."""

    status: Literal["ok", "error"]
    database: str


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database cannot be reached"}},
)
def healthz(engine: EngineDep) -> JSONResponse:
    """Say whether the API can reach its database."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return JSONResponse(
            {"status": "error", "database": str(exc.__class__.__name__)}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"description": "Prometheus text exposition format"}},
)
def metrics(registry: RegistryDep) -> Response:
    """Expose the Prometheus metrics of this process."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
