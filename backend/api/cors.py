"""Cross-origin reads of the public feed, and of nothing else.

Community maps on other sites fetch /public/v1 from the browser, so those
paths answer any origin, for GET only and without credentials. Every other
path gets no CORS headers at all: a page on another site cannot read the
private API's answers, whatever token its visitor holds.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PREFIX = "/public/"
PREFLIGHT_MAX_AGE_S = 86_400
"""Browsers may remember the preflight answer for a day (they cap it lower anyway)."""


class PublicCORSMiddleware:
    """Apply an open, read-only CORS policy to paths under ``prefix`` only."""

    def __init__(self, app: ASGIApp, prefix: str = PUBLIC_PREFIX) -> None:
        self.app = app
        self.prefix = prefix
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET"],
            # Sent by a script that revalidates by hand; browsers' own cache needs no preflight.
            allow_headers=["If-None-Match"],
            allow_credentials=False,
            expose_headers=["ETag"],
            max_age=PREFLIGHT_MAX_AGE_S,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route public paths through the CORS policy and everything else past it."""
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
