"""Restock visits from the street, and a machine's lots and stock discrepancies."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from backend import crud
from backend.api.deps import (
    PrincipalDep,
    RequestIdDep,
    SessionDep,
    SettingsDep,
    WriteSessionDep,
)
from backend.api.lot_schemas import (
    DiscrepanciesPage,
    DiscrepancyPublic,
    LotPublic,
    LotsPage,
    VisitCreate,
    VisitPublic,
    VisitSlot,
)
from backend.api.problems import problem_responses
from backend.api.schemas import MachineId, Offset
from backend.lots import store as lot_store
from backend.lots.visits import IdempotencyConflictError, VisitError, find_replay, record_visit
from backend.models import RestockVisit, StockDiscrepancy

log = logging.getLogger(__name__)

router = APIRouter(tags=["visits"])

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$",
    description="Any unique string per visit: a retry with it records the visit once")]


def _public(visit: RestockVisit) -> VisitPublic:
    details = visit.details or {}
    return VisitPublic(
        id=visit.id or 0, machine_id=visit.machine_id, visited_at=visit.visited_at,
        visited_by=visit.visited_by, counts=visit.counts,
        slots=[VisitSlot.model_validate(s) for s in details.get("slots", [])],
        discrepancies=details.get("discrepancies", []),
        resolved_alerts=details.get("resolved_alerts", 0),
    )


@router.post(
    "/visits",
    response_model=VisitPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409, 422),
)
def post_visit(
    body: VisitCreate,
    response: Response,
    session: WriteSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    idempotency_key: IdempotencyKey = None,
) -> VisitPublic:
    """Record the caller's restock visit: counts found, stock removed, lots loaded, counts after.

    201 also for a retry with the same Idempotency-Key and body (the first
    visit's answer, header ``Idempotent-Replayed: true``); 422 when the key
    came with another body, or the visit does not fit the slots (over
    capacity, unknown lot or product); 409 when a retry raced the original;
    404 for a machine or slot the caller cannot see.
    """
    try:
        done = record_visit(session=session, body=body, by=principal.name, settings=settings,
                            idempotency_key=idempotency_key, principal=principal,
                            request_id=request_id)
    except crud.NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except (VisitError, IdempotencyConflictError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except IntegrityError:
        # Another request with the same key committed between our look and our write.
        session.rollback()
        if idempotency_key is None:
            raise
        try:
            again = find_replay(session, by=principal.name, key=idempotency_key, body=body)
        except IdempotencyConflictError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        if again is None:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                "a request with this Idempotency-Key is in progress") from None
        response.headers["Idempotent-Replayed"] = "true"
        return _public(again)
    if done.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _public(done.visit)


def _visible(session: SessionDep, machine_id: str, principal: PrincipalDep) -> None:
    if crud.get_machine(session=session, machine_id=machine_id, principal=principal) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"machine {machine_id!r} not found")


@router.get("/machines/{machine_id}/lots", response_model=LotsPage,
            responses=problem_responses(404))
def get_lots(
    machine_id: MachineId, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> LotsPage:
    """List the lots in a machine, first expiry first, with heat exposure and why to replace."""
    _visible(session, machine_id, principal)
    states = lot_store.assess(session, machine_id, settings=settings)
    data = [
        LotPublic(
            id=s.lot.id or 0, slot=s.lot.slot, product=s.lot.product,
            lot_number=s.lot.lot_number, expiry=s.lot.expiry, quantity=s.lot.quantity,
            loaded_at=s.lot.loaded_at,
            outside_storage_h=round(s.exposure.outside_storage.total_seconds() / 3600, 2),
            outside_excursion_min=round(s.exposure.outside_excursion.total_seconds() / 60, 1),
            below_freezing_min=round(s.exposure.below_freezing.total_seconds() / 60, 1),
            replace_because=list(s.replace_because),
        )
        for s in states
    ]
    return LotsPage(data=data, count=len(data))


@router.get("/machines/{machine_id}/discrepancies", response_model=DiscrepanciesPage,
            responses=problem_responses(404))
def get_discrepancies(
    machine_id: MachineId,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[Offset, Query()] = 0,
) -> DiscrepanciesPage:
    """List a machine's stock discrepancies (books against a count), newest first."""
    _visible(session, machine_id, principal)
    where = col(StockDiscrepancy.machine_id) == machine_id
    total = session.exec(select(func.count()).select_from(StockDiscrepancy).where(where)).one()
    rows = session.exec(
        select(StockDiscrepancy).where(where)
        .order_by(col(StockDiscrepancy.detected_at).desc(), col(StockDiscrepancy.id).desc())
        .offset(offset).limit(limit)
    ).all()
    return DiscrepanciesPage(
        data=[DiscrepancyPublic.model_validate(r, from_attributes=True) for r in rows],
        count=int(total),
    )
