"""Notification routes (admin CRUD and a test message) and the delivery list (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status

from backend.api.deps import PrincipalDep, RequestIdDep, SessionDep, WriteSessionDep
from backend.api.notification_schemas import (
    NotificationPublic,
    NotificationsPage,
    RouteCreate,
    RoutePublic,
    RoutesPage,
    RouteUpdate,
    check_rules,
    check_target,
)
from backend.api.schemas import Offset, RowId
from backend.models import DeliveryState, NotificationRoute
from backend.notify import routes_crud

routes_router = APIRouter(prefix="/notification-routes", tags=["notifications"])
deliveries_router = APIRouter(prefix="/notifications", tags=["notifications"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No route with that id"}}


def _public(route: NotificationRoute) -> RoutePublic:
    return RoutePublic.model_validate(routes_crud.route_view(route))


@routes_router.get("", response_model=RoutesPage)
def list_routes(session: SessionDep) -> RoutesPage:
    """List the routes (targets shown as scheme and host only, secrets never)."""
    routes = routes_crud.list_routes(session=session)
    return RoutesPage(data=[_public(r) for r in routes], count=len(routes))


@routes_router.post("", response_model=RoutePublic, status_code=status.HTTP_201_CREATED,
                    responses={409: {"description": "A route of that name exists"}})
def create_route(body: RouteCreate, session: WriteSessionDep, principal: PrincipalDep,
                 request_id: RequestIdDep) -> RoutePublic:
    """Create a route."""
    try:
        route = routes_crud.create_route(session=session, values=body.model_dump(mode="json"),
                                         actor=principal.name, request_id=request_id)
    except routes_crud.RouteConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _public(route)


@routes_router.get("/{route_id}", response_model=RoutePublic, responses=NOT_FOUND)
def get_route(route_id: RowId, session: SessionDep) -> RoutePublic:
    """Show one route."""
    try:
        return _public(routes_crud.get_route(session=session, route_id=route_id))
    except routes_crud.RouteNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@routes_router.patch("/{route_id}", response_model=RoutePublic, responses=NOT_FOUND)
def update_route(route_id: RowId, body: RouteUpdate, session: WriteSessionDep,
                 principal: PrincipalDep, request_id: RequestIdDep) -> RoutePublic:
    """Change a route's target, secret or rules."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    for name in ("alert_types", "areas", "enabled", "min_severity", "target", "active_days",
                 "machine_tags"):
        if name in changes and changes[name] is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name} cannot be null")
    try:
        route = routes_crud.get_route(session=session, route_id=route_id)
        if "target" in changes:
            check_target(route.channel, changes["target"])
        check_rules({name: changes.get(name, getattr(route, name))
                     for name in routes_crud.RULE_FIELDS})
        route = routes_crud.update_route(session=session, route_id=route_id, changes=changes,
                                         actor=principal.name, request_id=request_id)
    except routes_crud.RouteNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except routes_crud.RouteConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _public(route)


@routes_router.delete("/{route_id}", status_code=status.HTTP_204_NO_CONTENT,
                      responses=NOT_FOUND)
def delete_route(route_id: RowId, session: WriteSessionDep, principal: PrincipalDep,
                 request_id: RequestIdDep) -> Response:
    """Delete a route; its deliveries stay listed."""
    try:
        routes_crud.delete_route(session=session, route_id=route_id, actor=principal.name,
                                 request_id=request_id)
    except routes_crud.RouteNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@routes_router.post("/{route_id}/test", response_model=NotificationPublic,
                    status_code=status.HTTP_202_ACCEPTED,
                    responses={**NOT_FOUND, 409: {"description": "The route is disabled"}})
def test_route(route_id: RowId, session: WriteSessionDep, principal: PrincipalDep,
               request_id: RequestIdDep) -> NotificationPublic:
    """Queue a test message to the route; follow it in GET /notifications."""
    try:
        note = routes_crud.queue_test(session=session, route_id=route_id, actor=principal.name,
                                      request_id=request_id)
    except routes_crud.RouteNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except routes_crud.RouteConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return NotificationPublic.model_validate(note, from_attributes=True)


@deliveries_router.get("", response_model=NotificationsPage)
def list_notifications(
    session: SessionDep,
    state: Annotated[DeliveryState | None, Query()] = None,
    route_id: Annotated[RowId | None, Query()] = None,
    alert_id: Annotated[RowId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[Offset, Query()] = 0,
) -> NotificationsPage:
    """List deliveries, newest first, with their attempts and last error."""
    notes, total = routes_crud.list_notifications(
        session=session, state=state, route_id=route_id, alert_id=alert_id, limit=limit,
        offset=offset)
    return NotificationsPage(
        data=[NotificationPublic.model_validate(n, from_attributes=True) for n in notes],
        count=total)
