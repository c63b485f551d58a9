"""Named dependency types for the routes."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlmodel import Session

from backend.api.security import require_principal
from backend.api.snapshot import FleetSnapshot
from backend.auth.principal import Principal
from backend.config import Settings
from backend.forecast.settings import ForecastSettings
from backend.public.cache import PublicFeedCache


def get_settings(request: Request) -> Settings:
    """Return the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """Return the app's database engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """Yield a session for one request."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def get_write_session(request: Request) -> Iterator[Session]:
    """Yield a session for a request that writes (on SQLite: BEGIN IMMEDIATE).

    A read-then-write transaction on SQLite fails outright when ingest commits
    between its read and its write; taking the write lock first makes it wait.
    """
    engine: Engine = request.app.state.write_engine
    with Session(engine, expire_on_commit=False) as session:
        yield session


def get_request_id(request: Request) -> str:
    """Return the id the request-id middleware gave this request."""
    request_id: str = request.state.request_id
    return request_id


def get_registry(request: Request) -> CollectorRegistry:
    """Return the app's Prometheus registry."""
    registry: CollectorRegistry = request.app.state.registry
    return registry


@lru_cache
def get_forecast_settings() -> ForecastSettings:
    """Return the forecast settings, read once from the environment (NX_FORECAST_*)."""
    return ForecastSettings()


async def get_public_feed(request: Request) -> PublicFeedCache:
    """Return the app's public feed cache (async: no worker thread for a cached answer)."""
    feed: PublicFeedCache = request.app.state.public_feed
    return feed


def get_fleet_snapshot(request: Request) -> FleetSnapshot:
    """Return the app's fleet snapshot (backend/api/snapshot.py)."""
    fleet: FleetSnapshot = request.app.state.fleet_snapshot
    return fleet


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]
RegistryDep = Annotated[CollectorRegistry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(require_principal)]
FleetDep = Annotated[FleetSnapshot, Depends(get_fleet_snapshot)]
PublicFeedDep = Annotated[PublicFeedCache, Depends(get_public_feed)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
ForecastSettingsDep = Annotated[ForecastSettings, Depends(get_forecast_settings)]
