"""Give every request an id: the caller's ``X-Request-ID`` when well formed, else a new uuid4."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
# Ids that other systems use (uuids, ULIDs, trace ids) fit; anything that could
# smuggle text into a log line or a header (spaces, quotes, control bytes) does not.
VALID_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")


def pick_request_id(offered: str | None) -> str:
    """Return ``offered`` if it is a well-formed id, else a new random one."""
    if offered is not None and VALID_ID.fullmatch(offered):
        return offered
    return str(uuid.uuid4())


class RequestIdMiddleware:
    """Set ``request.state.request_id`` and echo it in the response's ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag the request and its response; pass other scopes through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                offered = value.decode("latin-1")
                break
        request_id = pick_request_id(offered)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
