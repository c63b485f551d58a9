"""A small FastAPI app that serves the API contract from memory, run by uvicorn on a free port.

The console's client is tested against real HTTP with it; the lead's
end-to-end tests cover the real backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from tests.http_server import serve_http

ActionBody = Annotated[dict[str, Any] | None, Body()]


def machine_json(
    machine_id: str,
    *,
    health: str = "ok",
    lat: float | None = 39.95,
    lon: float | None = -75.16,
    counts: tuple[int, ...] = (8, 3),
    open_alerts: int = 0,
) -> dict[str, Any]:
    """Return a MachinePublic as the contract spells it."""
    return {
        "id": machine_id,
        "name": f"Machine {machine_id}",
        "lat": lat,
        "lon": lon,
        "site": "Kensington",
        "status": "offline" if health == "offline" else "online",
        "health": health,
        "last_seen": "2026-11-24T11:00:00Z",
        "firmware": "nx-1.2.0",
        "slots": [
            {
                "slot": i + 1,
                "product": "naloxone-nasal-4mg",
                "count": count,
                "capacity": 10,
                "par": 8,
                "low_threshold": 2,
            }
            for i, count in enumerate(counts)
        ],
        "open_alerts": open_alerts,
    }


def alert_json(
    alert_id: int,
    *,
    machine_id: str = "test-001",
    alert_type: str = "low_stock",
    severity: str = "warning",
    status: str = "open",
    opened_at: str = "2026-11-24T10:00:00Z",
) -> dict[str, Any]:
    """Return an AlertPublic as the contract spells it."""
    return {
        "id": alert_id,
        "type": alert_type,
        "severity": severity,
        "subject": f"machine:{machine_id}",
        "machine_id": machine_id,
        "status": status,
        "opened_at": opened_at,
        "acknowledged_at": None,
        "resolved_at": None,
        "acted_by": None,
        "message": f"{alert_type} at {machine_id}",
        "details": {},
    }


def hotspot_json(
    alert_id: int, lat: float, lon: float, *, radius_km: float = 0.8, p_value: float = 0.01
) -> dict[str, Any]:
    """Return one hotspot Feature as the API's GeoJSON spells it."""
    return {
        "type": "Feature",
        "id": alert_id,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "alert_id": alert_id,
            "message": "Dispense surge in Kensington",
            "radius_km": radius_km,
            "observed": 14,
            "expected": 3.2,
            "p_value": p_value,
            "recurrence_interval_days": 100.0,
        },
    }


def area_json(name: str, lat: float, lon: float, half: float = 0.01) -> dict[str, Any]:
    """Return one named area as ``GET /api/v1/areas`` spells it: a square around a point."""
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"name": name}}


def dispense_areas_json(
    areas: list[dict[str, Any]], totals: dict[str, int | str], k: int | None = 5
) -> dict[str, Any]:
    """Return the dispense export's GeoJSON for ``areas`` with already-published totals."""
    features = [
        {**area, "properties": {"name": area["properties"]["name"], "period": "week",
                                "dispenses": [],
                                "total": totals.get(area["properties"]["name"], 0)}}
        for area in areas
    ]
    return {"type": "FeatureCollection", "features": features, "suppression_k": k,
            "totals": [], "total": "suppressed"}


def stop_json(order: int, machine_id: str, *, urgency: str = "critical",
              arrival: str = "2026-11-24T14:10:00Z", loads: tuple[tuple[int, int, int], ...] = (
                  (1, 0, 8),), lat: float = 39.95, lon: float = -75.16) -> dict[str, Any]:
    """Return a PlannedStop; ``loads`` are (slot, count now, par) of the slots to fill."""
    load = [{"slot": slot, "product": "naloxone-nasal-4mg", "count": count, "par": par,
             "to_par": par - count, "replace": 0, "replace_lots": [], "quantity": par - count}
            for slot, count, par in loads]
    return {
        "order": order, "machine_id": machine_id, "name": f"Machine {machine_id}",
        "lat": lat, "lon": lon, "urgency": urgency, "reasons": [f"{urgency} reason"],
        "arrival": arrival, "departure": arrival.replace(":10:", ":20:"),
        "service_minutes": 10.0, "items": sum(x["quantity"] for x in load), "load": load,
    }


def plan_json(vans: list[list[dict[str, Any]]], *, depot: tuple[float, float] = (39.96, -75.15),
              left_out: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return a restock Plan with one van per list of stops."""
    routes = []
    for n, stops in enumerate(vans, start=1):
        totals: dict[str, int] = {}
        for stop in stops:
            for line in stop["load"]:
                totals[line["product"]] = totals.get(line["product"], 0) + line["quantity"]
        routes.append({
            "van": n, "stops": stops,
            "load_list": [{"product": p, "quantity": q} for p, q in totals.items()],
            "items": sum(totals.values()), "distance_km": 12.5 * n, "drive_minutes": 40.0,
            "service_minutes": 10.0 * len(stops), "departure": "2026-11-24T14:00:00Z",
            "return_time": "2026-11-24T16:30:00Z",
        })
    return {
        "depot": {"lat": depot[0], "lon": depot[1]},
        "shift_start": "2026-11-24T14:00:00Z", "shift_end": "2026-11-24T22:00:00Z",
        "van_capacity": 300, "distance_source": "haversine x 1.3", "vans": routes,
        "left_out": left_out or [], "distance_km": sum(r["distance_km"] for r in routes),
        "served": sum(len(v) for v in vans), "solver_status": "ok", "solver_seconds": 0.1,
    }


@dataclass
class FakeState:
    """What the fake API serves and what it saw."""

    machines: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], str | None]] = field(default_factory=list)
    hotspots: list[dict[str, Any]] = field(default_factory=list)
    areas: list[dict[str, Any]] = field(default_factory=list)
    area_totals: dict[str, int | str] = field(default_factory=dict)
    """Published dispense totals per area, as the backend's export would suppress them."""
    visits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    broken_machine_list: bool = False
    actions: list[tuple[str, int, dict[str, Any] | None]] = field(default_factory=list)
    """Alert actions as received: (new status, alert id, JSON body)."""
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Bearer token -> who ``/api/v1/auth/me`` says it is. Once any is set, every
    ``/api/v1`` route wants one of these tokens (401 otherwise), as the real API does."""
    forbidden: set[tuple[str, str]] = field(default_factory=set)
    """(method, path) pairs answered 403 as problem details, for a known token."""
    plan: dict[str, Any] | None = None
    visit_posts: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    """Visits posted to /api/v1/visits: (Idempotency-Key header, body)."""

    def add_identity(self, name: str, role: str, areas: tuple[str, ...] = ()) -> str:
        """Accept a new bearer token for ``name`` with ``role``; return the token."""
        token = f"fake-{name}-{len(self.identities)}"
        self.identities[token] = {
            "name": name, "role": role, "areas": list(areas), "source": "token"
        }
        return token

    def who(self, authorization: str | None) -> dict[str, Any] | None:
        """Return the identity of an ``Authorization`` header, if the token is known."""
        scheme, _, token = (authorization or "").partition(" ")
        return self.identities.get(token) if scheme.lower() == "bearer" else None


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


def build_app(state: FakeState) -> FastAPI:
    """Return a FastAPI app serving ``state`` under the contract's paths."""
    app = FastAPI()

    def seen(path: str, params: dict[str, str], auth: str | None) -> None:
        state.requests.append((path, params, auth))

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if state.identities and path.startswith("/api/v1/"):
            if state.who(request.headers.get("authorization")) is None:
                return _problem(401, "Unauthorized", "missing, unknown, expired or revoked token")
            if (request.method, path) in state.forbidden:
                return _problem(403, "Forbidden", "this role may not call this route")
        response: Response = await call_next(request)
        return response

    @app.get("/api/v1/auth/me")
    def me(authorization: str | None = Header(None)) -> dict[str, Any]:
        identity = state.who(authorization)
        if identity is None:
            raise HTTPException(401, detail="missing, unknown, expired or revoked token")
        return identity

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/machines")
    def machines(
        limit: int = Query(100),
        offset: int = Query(0),
        authorization: str | None = Header(None),
    ) -> dict[str, Any]:
        seen("/api/v1/machines", {"limit": str(limit), "offset": str(offset)}, authorization)
        if state.broken_machine_list:
            return {"data": [{"id": "x"}], "count": 1}
        return {"data": state.machines[offset : offset + limit], "count": len(state.machines)}

    @app.get("/api/v1/machines/{machine_id}")
    def machine(machine_id: str) -> dict[str, Any]:
        for item in state.machines:
            if item["id"] == machine_id:
                return {**item, "recent_events": [{"kind": "vend", "slot": 1, "result": "ok"}]}
        raise HTTPException(404, detail=f"machine {machine_id} is not registered")

    @app.get("/api/v1/alerts")
    def alerts(
        status: str | None = None,
        type: str | None = None,
        machine_id: str | None = None,
        limit: int = Query(100),
    ) -> dict[str, Any]:
        params = {"status": status or "", "type": type or "", "machine_id": machine_id or ""}
        seen("/api/v1/alerts", params, None)
        rows = [
            a
            for a in state.alerts
            if (status is None or a["status"] == status)
            and (type is None or a["type"] == type)
            and (machine_id is None or a["machine_id"] == machine_id)
        ]
        return {"data": rows[:limit], "count": len(rows)}

    @app.get("/api/v1/hotspots")
    def hotspots() -> dict[str, Any]:
        return {"type": "FeatureCollection", "features": state.hotspots}

    @app.get("/api/v1/areas")
    def areas() -> dict[str, Any]:
        return {"type": "FeatureCollection", "features": state.areas}

    @app.get("/api/v1/exports/dispenses.geojson")
    def dispenses_geojson() -> dict[str, Any]:
        return dispense_areas_json(state.areas, state.area_totals)

    @app.post("/api/v1/machines/{machine_id}/restock-visits", status_code=201)
    def restock_visit(
        machine_id: str,
        body: Annotated[dict[str, Any], Body()],
        authorization: str | None = Header(None),
    ) -> dict[str, Any]:
        who = state.who(authorization)
        for item in state.machines:
            if item["id"] == machine_id:
                for slot in item["slots"]:
                    slot["count"] = int(body["counts"].get(str(slot["slot"]), slot["count"]))
                state.visits.append((machine_id, body))
                return {
                    "id": len(state.visits),
                    "machine_id": machine_id,
                    "visited_at": datetime.now(UTC).isoformat(),
                    # Who visited is the caller, never a value in the body.
                    "visited_by": who["name"] if who else None,
                    "counts": body["counts"],
                }
        raise HTTPException(404, detail=f"machine {machine_id} is not registered")

    @app.get("/api/v1/restock/plan")
    def restock_plan(
        depot: str, shift_hours: float = 8, vans: int = 1, shift_start: str | None = None
    ) -> dict[str, Any]:
        params = {"depot": depot, "shift_hours": str(shift_hours), "vans": str(vans),
                  "shift_start": shift_start or ""}
        seen("/api/v1/restock/plan", params, None)
        return state.plan or plan_json([[]])

    @app.post("/api/v1/visits", status_code=201)
    def visit(
        body: Annotated[dict[str, Any], Body()],
        idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
    ) -> dict[str, Any]:
        state.visit_posts.append((idempotency_key, body))
        counts = {str(s["slot"]): s.get("count_after", 0) for s in body["slots"]}
        return {"id": len(state.visit_posts), "machine_id": body["machine_id"],
                "visited_at": datetime.now(UTC).isoformat(), "visited_by": None,
                "counts": counts, "slots": body["slots"], "discrepancies": [],
                "resolved_alerts": 0}

    def act(
        alert_id: int,
        new_status: str,
        stamp: str,
        action: dict[str, Any] | None,
        authorization: str | None,
    ) -> dict[str, Any]:
        state.actions.append((new_status, alert_id, action))
        who = state.who(authorization)
        for alert in state.alerts:
            if alert["id"] == alert_id:
                if alert["status"] == "resolved":
                    raise HTTPException(409, detail="alert is already resolved")
                alert["status"] = new_status
                alert[stamp] = datetime.now(UTC).isoformat()
                alert["acted_by"] = who["name"] if who else None
                return alert
        raise HTTPException(404, detail=f"alert {alert_id} does not exist")

    @app.post("/api/v1/alerts/{alert_id}/acknowledge")
    def acknowledge(
        alert_id: int, action: ActionBody = None, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        return act(alert_id, "acknowledged", "acknowledged_at", action, authorization)

    @app.post("/api/v1/alerts/{alert_id}/resolve")
    def resolve(
        alert_id: int, action: ActionBody = None, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        return act(alert_id, "resolved", "resolved_at", action, authorization)

    return app


@contextmanager
def serve(state: FakeState) -> Iterator[str]:
    """Serve ``state`` with uvicorn in a thread; yield the base URL."""
    with serve_http(build_app(state)) as base_url:
        yield base_url
