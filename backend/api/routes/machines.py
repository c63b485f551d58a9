"""Machines: the fleet snapshot, one machine's detail and edits, recording a restock visit."""

from __future__ import annotations

import gzip
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlmodel import Session

from backend import crud
from backend.api.deps import (
    FleetDep,
    PrincipalDep,
    RequestIdDep,
    SessionDep,
    SettingsDep,
    WriteSessionDep,
)
from backend.api.fleet_store import CURSOR_PATTERN, Cursor
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
from backend.api.snapshot import (
    GZIP_LEVEL,
    GZIP_MIN_BYTES,
    SnapshotUnavailableError,
)
from backend.machine_state import MachineStatus, machine_health
from backend.models import Machine, MachineUpdate
from backend.public.cache import accepts_gzip, etag_matches
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
                tags=list(m.tags),
                slots=[SlotPublic.model_validate(s, from_attributes=True) for s in own],
                open_alerts=len(alerts[m.id]),
            )
        )
    return out


SNAPSHOT_RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the ETag sent in If-None-Match still names the state "
          "of the machines the caller may see"},
    **problem_responses(503),
}
Since = Annotated[str | None, Query(
    max_length=4_400, pattern=CURSOR_PATTERN,
    description="The `cursor` of the caller's last answer: answer only what changed since")]


def _answer(request: Request, body: bytes, packed: bytes | None, etag: str) -> Response:
    """Send ``body`` (or its gzip form ``packed``), or 304 when the caller has this state."""
    headers = {"ETag": etag, "Vary": "Accept-Encoding", "Cache-Control": "private, no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if accepts_gzip(request.headers.get("accept-encoding")):
        if packed is None and len(body) >= GZIP_MIN_BYTES:
            packed = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        if packed is not None:
            headers["Content-Encoding"] = "gzip"
            body = packed
    return Response(body, media_type="application/json", headers=headers)


@router.get("", response_model=MachinesPage, responses=SNAPSHOT_RESPONSES)
def list_machines(
    request: Request,
    fleet: FleetDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[Offset, Query()] = 0,
    since: Since = None,
) -> Response:
    """List the machines the caller may see, with slots, status, health and tags.

    At most ``NX_API_SNAPSHOT_CACHE_S`` behind the database. With ``since``,
    only the machines changed since that cursor and the ids of those removed
    (``full`` false; ``limit`` and ``offset`` do not apply); a cursor too old
    or unknown gets the listing (``full`` true). ``If-None-Match`` with the
    last ETag answers 304 while nothing the caller may see has changed.
    """
    try:
        cursor = Cursor.parse(since) if since is not None else None
        if since is not None and cursor is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "since is not a cursor this API gave (xmin <= xip < xmax)")
        if cursor is not None:
            delta = fleet.delta(principal.areas, cursor)
            if delta is not None:
                return _answer(request, delta[0], None, delta[1])
        page = fleet.page(principal.areas, limit, offset)
    except SnapshotUnavailableError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc),
                            headers={"Retry-After": "5"}) from None
    return _answer(request, page.identity, page.gzip, page.etag)


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


@router.patch("/{machine_id}", response_model=MachinePublic,
              responses=problem_responses(404, 422))
def update_machine(
    machine_id: MachineId,
    body: MachineUpdate,
    session: WriteSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> MachinePublic:
    """Change a machine's name, site or location (fields sent only); audited.

    404 for a machine the caller cannot see; 422 for a bad field or a null name
    or coordinate. A planogram, par or threshold change goes to the machine as a
    ``planogram`` command (``POST /machines/{id}/commands``) instead.
    """
    try:
        machine = crud.update_machine(session=session, machine_id=machine_id, changes=body,
                                      actor=principal.name, request_id=request_id,
                                      principal=principal)
    except crud.NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _public(session, [machine], settings.default_low_threshold)[0]


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
