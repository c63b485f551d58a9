"""Machines: the fleet snapshot, one machine's detail, recording a restock visit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlmodel import Session

from backend import crud
from backend.api.deps import (
    PrincipalDep,
    RequestIdDep,
    SessionDep,
    SettingsDep,
    WriteSessionDep,
)
from backend.api.problems import problem_responses
from backend.api.schemas import (
    EventPublic,
    MachineDetail,
    MachineId,
    MachinePublic,
    MachinesPage,
    Offset,
    RestockVisitCreate,
    RestockVisitPublic,
    SlotPublic,
)
from backend.api.snapshot import SnapshotCache, fleet_page
from backend.machine_state import MachineStatus, machine_health
from backend.models import Machine
from backend.stock import OverCapacityError, effective_low_threshold

router = APIRouter(prefix="/machines", tags=["machines"])


def _public(
    session: Session, machines: list[Machine], default_threshold: int
) -> list[MachinePublic]:
    ids = [m.id for m in machines]
    slots = crud.slots_of(session=session, machine_ids=ids)
    alerts = crud.open_alert_types(session=session, machine_ids=ids)
    out = []
    for m in machines:
        own = slots[m.id]
        levels = [
            (s.count, effective_low_threshold(s.low_threshold, default_threshold)) for s in own
        ]
        status_ = MachineStatus.of(m.status)
        out.append(
            MachinePublic(
                id=m.id,
                name=m.name,
                lat=m.lat,
                lon=m.lon,
                site=m.site,
                area=m.area,
                status=status_.value,
                health=machine_health(
                    status=status_, slot_levels=levels, open_alert_types=set(alerts[m.id])
                ).value,
                last_seen=m.last_seen,
                firmware=m.firmware,
                slots=[SlotPublic.model_validate(s, from_attributes=True) for s in own],
                open_alerts=len(alerts[m.id]),
            )
        )
    return out


@router.get("", response_model=MachinesPage)
def list_machines(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[Offset, Query()] = 0,
) -> Response:
    """List the machines the caller may see, with slots, status and health (<= 1 s stale)."""
    cache: SnapshotCache = request.app.state.snapshot_cache
    body = cache.get(
        (limit, offset, principal.areas),
        lambda: fleet_page(
            session,
            limit=limit,
            offset=offset,
            default_threshold=settings.default_low_threshold,
            principal=principal,
        ),
    )
    return Response(body, media_type="application/json")


@router.get("/{machine_id}", response_model=MachineDetail, responses=problem_responses(404))
def get_machine(
    machine_id: MachineId, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> MachineDetail:
    """Show one machine with its recent events."""
    machine = crud.get_machine(session=session, machine_id=machine_id, principal=principal)
    if machine is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"machine {machine_id!r} not found")
    public = _public(session, [machine], settings.default_low_threshold)[0]
    events = crud.recent_events(session=session, machine_id=machine_id)
    return MachineDetail(
        **public.model_dump(),
        temperature_c=machine.temperature_c,
        door=machine.door,
        boot_id=machine.boot_id,
        recent_events=[EventPublic.model_validate(e) for e in events],
    )


@router.post(
    "/{machine_id}/restock-visits",
    response_model=RestockVisitPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404),
)
def record_restock_visit(
    machine_id: MachineId,
    body: RestockVisitCreate,
    session: WriteSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> RestockVisitPublic:
    """Record a restock visit by the caller: set slot counts, close the stock alerts it fixed."""
    try:
        visit = crud.record_restock_visit(
            session=session,
            machine_id=machine_id,
            counts=body.counts,
            counted_before=body.counted_before,
            visited_by=principal.name,
            default_low_threshold=settings.default_low_threshold,
            principal=principal,
            actor=principal.name,
            request_id=request_id,
        )
    except crud.NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except OverCapacityError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return RestockVisitPublic.model_validate(visit, from_attributes=True)
