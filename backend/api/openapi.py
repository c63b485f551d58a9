"""The OpenAPI document: every error status an operation can return, with the problem schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from backend.api.guards import WRITE_METHODS
from backend.api.problems import PROBLEM_REF, Problem, problem_responses

# FastAPI's own 422 body, replaced by the problem schema everywhere.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def edge_statuses(method: str, operation: dict[str, Any], *, public: bool) -> set[int]:
    """The error statuses the edge (not the handler) may answer for one operation."""
    statuses: set[int] = set()
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(422)  # a parameter or body that does not validate
    if operation.get("requestBody"):
        statuses.add(400)  # a body that cannot be decoded at all (FastAPI's own refusal)
    if method.upper() in WRITE_METHODS:
        statuses |= {403, 413, 415}  # foreign origin, body too large, body not JSON
    if not public:
        statuses |= {401, 403}  # no or a bad credential; a role without the right
        # The database unavailable (backend/api/problems.py): the token check reads it.
        # The public routes that read it declare their own 503.
        statuses.add(503)
    return statuses


def document_errors(schema: dict[str, Any], *, is_public: Callable[[str, str], bool]) -> None:
    """Document the edge's error statuses on every operation, all as problem+json.

    Route-specific statuses (404 for an object that does not exist, 409 for a
    state that does not allow the change) are declared on the route itself with
    ``problem_responses``; this adds what every route shares.
    """
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(edge_statuses(method, operation, public=is_public(method, path))):
                if status == 422 or str(status) not in responses:  # 422: FastAPI's own body
                    responses[str(status)] = problem_responses(status)[status]
            for status, response in responses.items():
                # A route's own error status declared with a description only.
                if status.isdigit() and 400 <= int(status) < 600 and not response.get("content"):
                    response["content"] = problem_responses(int(status))[int(status)]["content"]
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(problem.pop("$defs", {}))
    components[PROBLEM_REF.rsplit("/", 1)[1]] = problem
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)


def install_openapi(app: FastAPI, *, is_public: Callable[[str, str], bool]) -> None:
    """Make the app's OpenAPI document carry the documented error statuses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate(), is_public=is_public)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
