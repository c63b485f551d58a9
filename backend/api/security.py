"""The one dependency that authenticates a request and applies backend/api/policy.py."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.routing import compile_path

from backend.api import policy
from backend.api.problems import DATABASE_RETRY_AFTER_S, database_unavailable
from backend.auth.oidc import NoRoleError, OidcVerifier
from backend.auth.principal import Principal
from backend.auth.tokens import authenticate_token
from backend.config import Settings

log = logging.getLogger(__name__)

CHALLENGE = 'Bearer realm="naloxnet"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="naloxnet", error="invalid_token"'  # noqa: S105


def bearer_token(request: Request) -> str | None:
    """Return the token of an ``Authorization: Bearer`` header, or None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authenticate(request: Request, token: str) -> Principal | None:
    """Return the principal a bearer token stands for, or None if it is not valid now."""
    verifier: OidcVerifier | None = request.app.state.oidc
    if verifier is not None and token.count(".") == 2:
        return verifier.verify(token)
    settings: Settings = request.app.state.settings
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        return authenticate_token(
            session, token, touch_after_s=settings.auth_last_used_interval_s
        )


def route_template(request: Request) -> str | None:
    """Return the path template (as in the OpenAPI schema) of the route serving ``request``.

    FastAPI hands dependencies the route object as declared in its own router
    (``/machines/{machine_id}``, without the prefixes it was included under),
    so the full template is found among the schema's paths: one that matches
    the request's path and ends with the route's own path.
    """
    route = request.scope.get("route")
    own = getattr(route, "path", None)
    if own is None:
        return None
    index: RouteIndex = getattr(request.app.state, "route_index", None) or RouteIndex()
    request.app.state.route_index = index
    path = request.scope["path"]
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return index.template(request.app.openapi(), request.method, path, own)


class RouteIndex:
    """The OpenAPI path templates compiled to regexes (rebuilt when the schema changes)."""

    def __init__(self) -> None:
        self._schema: dict[str, Any] | None = None
        self._templates: list[tuple[re.Pattern[str], str, frozenset[str]]] = []

    def template(self, schema: dict[str, Any], method: str, path: str, own: str) -> str | None:
        """Return the template matching ``method`` and ``path`` that ends with ``own``."""
        if schema is not self._schema:
            self._templates = [
                (compile_path(template)[0], template, frozenset(m.upper() for m in ops))
                for template, ops in schema.get("paths", {}).items()
            ]
            self._schema = schema
        for regex, template, methods in self._templates:
            if method in methods and template.endswith(own) and regex.match(path):
                return template
        return None


async def authorize(request: Request) -> Principal | None:
    """Authenticate the caller and check its role against the policy table.

    Runs before the route's own parameters and body are validated, so that an
    unauthenticated caller gets 401 and a wrong role 403 whatever it sent.
    Returns None on public routes. Async, so that a public route costs no hop
    to a worker thread (the public feed's benchmark: most of its time per
    request); only the token check, which reads the database, runs in one.
    """
    template = route_template(request)
    access = policy.access_for(request.method, template)
    if access is policy.PUBLIC:
        return None
    token = bearer_token(request)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a bearer token is required",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    try:
        principal = await run_in_threadpool(authenticate, request, token)
    except NoRoleError as exc:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{exc.subject} has no NaloxNet role; ask an admin"
        ) from None
    except SQLAlchemyError as exc:
        # An outage (backend/api/problems.py) is a state, logged at WARNING; anything
        # else the database says about a token lookup is a bug.
        level = logging.WARNING if database_unavailable(exc) else logging.ERROR
        log.log(level, "cannot check a token: database error %s", exc.__class__.__name__)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "cannot check credentials: the database is unavailable",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        ) from None
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the bearer token is not valid (unknown, expired or revoked)",
            headers={"WWW-Authenticate": INVALID_TOKEN_CHALLENGE},
        )
    if access is None:
        log.error("no policy entry for %s %s: refused", request.method, template)
    if not policy.allows(access, principal.role):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"role {principal.role.value} may not call this route"
        )
    request.state.principal = principal
    return principal


async def require_principal(
    principal: Annotated[Principal | None, Depends(authorize)],
) -> Principal:
    """Return the authenticated principal (``authorize`` runs once per request)."""
    if principal is None:  # a public route asked who is calling: nobody
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a bearer token is required",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    return principal
