"""Every error as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
# RFC 9457: "about:blank" says the problem is no more than its HTTP status.
BLANK = "about:blank"
PROBLEM_REF = "#/components/schemas/Problem"
DATABASE_RETRY_AFTER_S = 5
"""What a 503 for an unreachable database tells the client to wait before it tries again."""

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One rejected input: where it is and what is wrong with it."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An error response (RFC 9457)."""

    type: str = Field(default=BLANK, description="URI naming the kind of problem")
    title: str = Field(description="short summary of the kind of problem")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong with this request")
    instance: str = Field(description="the path of the request that failed")
    request_id: str | None = Field(default=None, description="the request's X-Request-ID")
    errors: list[FieldError] | None = Field(
        default=None, description="each rejected input (422 only)"
    )


def problem_body(
    status: int,
    detail: str,
    *,
    instance: str,
    request_id: str | None = None,
    errors: list[FieldError] | None = None,
) -> bytes:
    """Serialise a problem for ``status``; the title is the status phrase."""
    problem = Problem(
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        request_id=request_id,
        errors=errors,
    )
    return problem.model_dump_json(exclude_none=True).encode()


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    errors: list[FieldError] | None = None,
) -> Response:
    """Build a problem+json response for a request."""
    body = problem_body(
        status,
        detail,
        instance=request.url.path,
        request_id=_request_id(request),
        errors=errors,
    )
    return Response(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _detail_text(detail: Any, status: int) -> str:
    if isinstance(detail, str) and detail:
        return detail
    if detail is None:
        return HTTPStatus(status).description
    return json.dumps(detail, default=str)


def field_errors(exc: RequestValidationError) -> list[FieldError]:
    """The validation errors without the rejected input (it may be large or a secret)."""
    return [
        FieldError(
            loc=[part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
            msg=str(error.get("msg", "")),
            type=str(error.get("type", "")),
        )
        for error in exc.errors()
    ]


def _summary(errors: list[FieldError]) -> str:
    first = errors[0] if errors else None
    if first is None:
        return "the request is not valid"
    where = ".".join(str(part) for part in first.loc)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.msg}{more}"


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=headers)
    return problem_response(
        request, exc.status_code, _detail_text(exc.detail, exc.status_code), headers=headers
    )


async def _validation_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc)
    return problem_response(request, 422, _summary(errors), errors=errors)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used just now (not that a query is wrong).

    OperationalError covers a refused or dropped connection, a backend killed
    by ``pg_terminate_backend`` or a restart, and SQLite's "database is
    locked"; any DBAPI error on a connection SQLAlchemy found dead counts too,
    and so does a pool with no connection to lend (a database that hangs).
    """
    if isinstance(exc, OperationalError | PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


async def _database_exception(request: Request, exc: Exception) -> Response:
    if not database_unavailable(exc):
        raise exc  # a bug or bad SQL of ours: the unexpected-error middleware answers 500
    # An outage is an operational state, not a bug: one WARNING per request, no trace.
    # The transaction was rolled back, unless the connection died during COMMIT itself;
    # a write with an Idempotency-Key can be retried safely either way.
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    first_line = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
    log.warning("database unavailable answering %s %s: %s: %s", request.method,
                request.url.path, type(cause).__name__, first_line)
    return problem_response(
        request,
        503,
        "the database is unavailable just now; try again later",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render HTTP errors, routing 404/405, invalid input and a database outage as problems."""
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_exception)
    app.add_exception_handler(DBAPIError, _database_exception)
    app.add_exception_handler(PoolTimeoutError, _database_exception)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for error statuses, all with the problem schema."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }

