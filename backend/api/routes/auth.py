"""Who am I: the authenticated caller's name, role and areas."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import PrincipalDep
from backend.api.schemas import PrincipalPublic

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get("/me", response_model=PrincipalPublic)
def me(principal: PrincipalDep) -> PrincipalPublic:
    """Return the caller as the API sees it (for the console to show what the role may do)."""
    return PrincipalPublic(
        name=principal.name,
        role=principal.role.value,
        areas=sorted(principal.areas),
        source="oidc" if principal.source == "oidc" else "token",
    )
