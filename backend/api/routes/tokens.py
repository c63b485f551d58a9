"""API tokens (admin): list, create (the token is in the response once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from backend.api.deps import PrincipalDep, RequestIdDep, WriteSessionDep
from backend.api.schemas import TokenCreate, TokenCreated, TokenPublic, TokensPage
from backend.audit import tokens as audited_tokens
from backend.auth import tokens
from backend.models import ApiToken, utcnow

router = APIRouter(prefix="/tokens", tags=["tokens"])


def _public(row: ApiToken) -> TokenPublic:
    return TokenPublic(
        name=row.name,
        role=row.role,
        prefix=row.prefix,
        areas=list(row.areas),
        state=tokens.token_state(row, utcnow()),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


@router.get("", response_model=TokensPage)
def list_tokens(
    session: WriteSessionDep,
    include_revoked: Annotated[bool, Query(description="Also list revoked tokens")] = False,
) -> TokensPage:
    """List tokens by name (never the tokens themselves)."""
    rows = tokens.list_tokens(session, include_revoked=include_revoked)
    return TokensPage(data=[_public(r) for r in rows], count=len(rows))


@router.post(
    "",
    response_model=TokenCreated,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A live token of that name exists"}},
)
def create_token(
    body: TokenCreate,
    session: WriteSessionDep,
    response: Response,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> TokenCreated:
    """Create a token; the response carries it this once (store it now)."""
    try:
        expires_in = None if body.expires_in is None else tokens.parse_duration(body.expires_in)
        secret, row = audited_tokens.create_token(
            session, actor=principal.name, name=body.name, role=body.role, areas=body.areas,
            expires_in=expires_in, request_id=request_id,
        )
    except tokens.TokenExistsError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except tokens.TokenError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated(**_public(row).model_dump(), token=secret)


@router.post(
    "/{name}/revoke",
    response_model=TokenPublic,
    responses={404: {"description": "No live token of that name"}},
)
def revoke_token(
    name: str, session: WriteSessionDep, principal: PrincipalDep, request_id: RequestIdDep
) -> TokenPublic:
    """Revoke the live token called ``name``: refused from the next request on."""
    try:
        row = audited_tokens.revoke_token(session, actor=principal.name, name=name,
                                          request_id=request_id)
    except tokens.TokenNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return _public(row)
