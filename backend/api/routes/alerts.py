"""Alerts: list with filters, acknowledge, resolve (as the authenticated caller)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from backend import crud
from backend.api.deps import (
    PrincipalDep,
    RequestIdDep,
    SessionDep,
    SettingsDep,
    WriteSessionDep,
)
from backend.api.problems import problem_responses
from backend.api.schemas import AlertsPage, MachineId, Offset, RowId
from backend.auth.principal import Principal, Role
from backend.config import Settings
from backend.hotspots.geojson import suppressed_alert_view
from backend.models import Alert, AlertPublic, AlertStatus, AlertType

router = APIRouter(prefix="/alerts", tags=["alerts"])


def _public(alert: Alert, principal: Principal, settings: Settings) -> AlertPublic:
    """Return an alert as the caller may see it: small overdose counts hidden but from admin."""
    public = AlertPublic.model_validate(alert, from_attributes=True)
    k = None if principal.role is Role.ADMIN else settings.stats_suppression_k
    message, details = suppressed_alert_view(public.type, public.message, public.details or {}, k)
    if details is public.details:
        return public
    return public.model_copy(update={"message": message, "details": details})


@router.get("", response_model=AlertsPage)
def list_alerts(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    status_: Annotated[AlertStatus | None, Query(alias="status")] = None,
    type_: Annotated[AlertType | None, Query(alias="type")] = None,
    machine_id: Annotated[MachineId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[Offset, Query()] = 0,
) -> AlertsPage:
    """List the alerts the caller works on (by role and areas), newest first."""
    alerts, total = crud.list_alerts(
        session=session,
        status=status_.value if status_ else None,
        alert_type=type_.value if type_ else None,
        machine_id=machine_id,
        limit=limit,
        offset=offset,
        principal=principal,
    )
    return AlertsPage(
        data=[_public(a, principal, settings) for a in alerts], count=total
    )


# A body (the old {"by": ...}) is not read: who acted is the authenticated principal.
@router.post(
    "/{alert_id}/acknowledge", response_model=AlertPublic, responses=problem_responses(404, 409)
)
def acknowledge(
    alert_id: RowId, session: WriteSessionDep, principal: PrincipalDep, request_id: RequestIdDep,
    settings: SettingsDep,
) -> AlertPublic:
    """Acknowledge an open alert as the caller."""
    try:
        alert = crud.acknowledge_alert(
            session=session, alert_id=alert_id, by=principal.name, principal=principal,
            request_id=request_id,
        )
    except crud.NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except crud.InvalidTransitionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _public(alert, principal, settings)


@router.post("/{alert_id}/resolve", response_model=AlertPublic, responses=problem_responses(404))
def resolve(
    alert_id: RowId, session: WriteSessionDep, principal: PrincipalDep, request_id: RequestIdDep,
    settings: SettingsDep,
) -> AlertPublic:
    """Resolve an alert as the caller."""
    try:
        alert = crud.resolve_alert(
            session=session, alert_id=alert_id, by=principal.name, principal=principal,
            request_id=request_id,
        )
    except crud.NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return _public(alert, principal, settings)
