"""The FastAPI application factory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine

from backend.api import policy
from backend.api.cors import PublicCORSMiddleware
from backend.api.guards import (
    BodyLimitMiddleware,
    UnexpectedErrorMiddleware,
    WriteGuardMiddleware,
)
from backend.api.openapi import install_openapi
from backend.api.problems import install_problem_handlers
from backend.api.request_id import RequestIdMiddleware
from backend.api.router import api_router, root_router
from backend.api.security import authorize, route_template
from backend.api.snapshot import FleetSnapshot
from backend.auth.oidc import make_verifier
from backend.config import Settings
from backend.db import check_schema, make_engine
from backend.public.cache import FeedSnapshot, PublicFeedCache, thread_builder


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    write_engine: Engine | None = None,
    registry: CollectorRegistry | None = None,
    public_feed_builder: Callable[[], Awaitable[FeedSnapshot]] | None = None,
) -> FastAPI:
    """Build the API; refuses (SchemaOutOfDateError) a database not at the newest schema."""
    engine = engine or make_engine(settings.database_url,
                                   dead_link_s=settings.database_dead_link_s)
    check_schema(engine)
    registry = registry if registry is not None else CollectorRegistry()
    write_engine = write_engine or make_engine(settings.database_url, immediate=True,
                                              dead_link_s=settings.database_dead_link_s)
    fleet = FleetSnapshot(engine, write_engine, default_threshold=settings.default_low_threshold,
                          max_age_s=settings.api_snapshot_cache_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Served (uvicorn runs the lifespan): a thread keeps the fleet snapshot current.
        if fleet.max_age_s > 0:
            fleet.start()
        try:
            yield
        finally:
            fleet.stop()

    # One dependency on every route applies the policy table (backend/api/policy.py).
    app = FastAPI(
        title="NaloxNet backend",
        version="1",
        docs_url="/docs",
        dependencies=[Depends(authorize)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.write_engine = write_engine
    app.state.registry = registry
    app.state.oidc = make_verifier(settings)
    app.state.fleet_snapshot = fleet
    silent_after = timedelta(seconds=settings.offline_timeout_s)
    # ``nx-backend serve`` builds the public feed in a child process (see
    # backend/public/builder.py) and stops it on exit; elsewhere a thread will do.
    build = public_feed_builder or thread_builder(engine, silent_after)
    app.state.public_feed = PublicFeedCache(build, settings.public_feed_cache_s)
    requests = Counter(
        "nx_api_requests", "API requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "nx_api_request_seconds", "API request latency", ["route"], registry=registry
    )

    install_problem_handlers(app)
    # Added innermost first: a refused request is still measured and carries its id.
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(WriteGuardMiddleware, allowed_origins=settings.api_allowed_origins)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)

    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The full template (/api/v1/machines, not the router's own /machines,
        # which /public/v1/machines shares).
        name = route_template(request) or "unmatched"
        latency.labels(name).observe(time.perf_counter() - started)
        requests.labels(request.method, name, str(response.status_code)).inc()
        return response

    app.add_middleware(PublicCORSMiddleware)
    # Added last, so outermost: every response, the metrics one's too, carries the id.
    app.add_middleware(RequestIdMiddleware)
    app.include_router(root_router)
    app.include_router(api_router)
    install_openapi(app, is_public=_is_public)
    return app


def _is_public(method: str, path: str) -> bool:
    """Tell whether a route answers without a credential (backend/api/policy.py)."""
    return policy.access_for(method, path) is policy.PUBLIC
