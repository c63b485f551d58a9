"""Keep requests for the public feed out of the access log.

Someone looking up where to get naloxone should leave no trace with us: an
access log line is a client address beside the fact that it asked for the
naloxone locator. The feed takes no parameters and is the same for everyone,
so the line would tell operators nothing they need; Prometheus still counts
the requests (``nx_api_requests``), without addresses.
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"
PUBLIC_PREFIX = "/public/"


class DropPublicRequests(logging.Filter):
    """Drop uvicorn access records whose path is under ``/public/``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for an access record of a public path."""
        # uvicorn logs '%s - "%s %s HTTP/%s" %d' with (client, method, path, version, status).
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            return not args[2].startswith(PUBLIC_PREFIX)
        return True


def install() -> None:
    """Add the filter to uvicorn's access logger (it survives uvicorn's own logging setup)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DropPublicRequests) for f in logger.filters):
        logger.addFilter(DropPublicRequests())
