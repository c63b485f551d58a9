"""ASGI middleware at the API's edge: body size, what a write may carry, unexpected errors."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.problems import PROBLEM_JSON, problem_body

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"


async def send_problem(scope: Scope, receive: Receive, send: Send, status: int,
                       detail: str) -> None:
    """Answer the request with a problem+json body."""
    state = scope.get("state") or {}
    request_id = state.get("request_id") if isinstance(state, dict) else None
    body = problem_body(
        status,
        detail,
        instance=scope.get("path", ""),
        request_id=request_id if isinstance(request_id, str) else None,
    )
    await Response(body, status_code=status, media_type=PROBLEM_JSON)(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse (413) a request body larger than ``max_bytes`` without reading it in full.

    A declared Content-Length is checked before any of the body is read. A
    chunked body is read up to the limit and handed on from memory; the rest
    is never read.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            # The server (h11, httptools) holds the body to a declared length;
            # only its size is ours to judge.
            try:
                size = int(declared)
            except ValueError:
                await send_problem(scope, receive, send, 400, "Content-Length is not a number")
                return
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if "transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body at all
            return
        chunks: list[bytes] = []
        size = 0  # read so far
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_problem(
            scope, receive, send, 413,
            f"the request body is larger than the {self.max_bytes} bytes this API accepts",
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that first yields ``body`` whole, then whatever the client sends next."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def normalise_origin(origin: str) -> str:
    """Return ``scheme://host[:port]`` in lower case, without a default port or slash."""
    parts = urlsplit(origin.strip().rstrip("/"))
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(scheme)
    try:
        port = parts.port
    except ValueError:
        port = None
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{scheme}://{host}{suffix}"


class WriteGuardMiddleware:
    """Let a write through only from an allowed origin and only with a JSON body.

    A browser sends ``Origin`` with every cross-site POST; a write carrying an
    origin that is neither the API's own nor in ``allowed_origins`` is refused
    (403), so a page on another site cannot act with a user's credentials. A
    body must be ``application/json`` (415 otherwise): an HTML form cannot send
    that type. A write without a body and without a Content-Type (``curl -X
    POST``) is let through; it carries nothing to parse.
    """

    def __init__(self, app: ASGIApp, *, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(normalise_origin(o) for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, scope, headers):
            await send_problem(
                scope, receive, send, 403,
                f"writes from the origin {origin[:200]!r} are not allowed",
            )
            return
        content_type = headers.get("content-type")
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if content_type is None and not has_body:
            await self.app(scope, receive, send)
            return
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type != JSON:
            await send_problem(
                scope, receive, send, 415,
                f"a request body must be {JSON}, not {media_type or 'untyped'}",
            )
            return
        await self.app(scope, receive, send)

    def _origin_allowed(self, origin: str, scope: Scope, headers: Headers) -> bool:
        wanted = normalise_origin(origin)
        if wanted in self.allowed:
            return True
        # The API's own pages (/docs) post from the origin the request went to.
        own = normalise_origin(f"{scope.get('scheme', 'http')}://{headers.get('host', '')}")
        return origin != "null" and wanted == own


class UnexpectedErrorMiddleware:
    """Answer an unexpected exception with a bare 500 problem and log it once here.

    The body names no exception and carries no stack trace. The exception is
    not re-raised, so the server does not log it a second time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if started:
                raise  # too late for a problem body; the server logs it (once)
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            await send_problem(
                scope, receive, send, 500,
                "the server met an unexpected error; it has been logged",
            )
