"""A machine's public listing (name, opening hours, in service): admins set what the public sees."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from backend import crud
from backend.api.deps import PrincipalDep, RequestIdDep, WriteSessionDep
from backend.models import Machine, MachineListingUpdate, MachineTags, MachineTagsPublic
from backend.public.schemas import PublicListing

router = APIRouter(prefix="/machines", tags=["public feed"])


def listing_of(machine: Machine) -> PublicListing:
    """Describe a machine's public listing."""
    return PublicListing(
        machine_id=machine.id,
        public_id=machine.public_id,
        public_name=machine.public_name,
        opening_hours=machine.opening_hours,
        in_service=machine.in_service,
        listed=machine.active and machine.in_service and machine.public_name is not None,
    )


@router.patch(
    "/{machine_id}/public-listing",
    response_model=PublicListing,
    responses={404: {"description": "No such machine (or outside the caller's areas)"}},
)
def update_public_listing(
    machine_id: str,
    body: MachineListingUpdate,
    session: WriteSessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> PublicListing:
    """Change a machine's public name, opening hours or service state (fields sent only).

    A public name lists the machine in /public/v1/machines; ``"public_name": null``
    unlists it; ``"in_service": false`` takes it off the feed until it is back.
    """
    try:
        machine = crud.update_public_listing(
            session=session, machine_id=machine_id, changes=body, actor=principal.name,
            request_id=request_id, principal=principal)
    except crud.NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return listing_of(machine)


@router.put(
    "/{machine_id}/tags",
    response_model=MachineTagsPublic,
    responses={404: {"description": "No such machine (or outside the caller's areas)"}},
    tags=["machines"],
)
def set_machine_tags(
    machine_id: str,
    body: MachineTags,
    session: WriteSessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> MachineTagsPublic:
    """Replace a machine's tags (notification routes may select machines by them)."""
    try:
        machine = crud.set_machine_tags(
            session=session, machine_id=machine_id, tags=body.tags, actor=principal.name,
            request_id=request_id, principal=principal)
    except crud.NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return MachineTagsPublic(machine_id=machine.id, tags=machine.tags)
