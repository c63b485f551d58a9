"""The one place where routers are included."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.routes import (
    alerts,
    areas,
    audit,
    auth,
    commands,
    devices,
    exports,
    forecast,
    health,
    hotspots,
    listings,
    machine_history,
    machines,
    notifications,
    public,
    restock,
    stats,
    tokens,
    visits,
)

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(machines.router)
api_router.include_router(machine_history.router)
api_router.include_router(commands.router)
api_router.include_router(forecast.router)
api_router.include_router(listings.router)
api_router.include_router(alerts.router)
api_router.include_router(hotspots.router)
api_router.include_router(areas.router)
api_router.include_router(auth.router)
api_router.include_router(tokens.router)
api_router.include_router(audit.router)
api_router.include_router(notifications.routes_router)
api_router.include_router(notifications.deliveries_router)
api_router.include_router(devices.router)
api_router.include_router(restock.router)
api_router.include_router(visits.router)
api_router.include_router(stats.router)
api_router.include_router(exports.router)

root_router = APIRouter()
root_router.include_router(health.router)
root_router.include_router(public.router)
