"""The feed as served: both renderings with their ETags, rebuilt at most once per ``ttl_s``.

However many clients ask, the database sees one read per ``ttl_s`` per API
process: a request that finds the snapshot expired rebuilds it while every
other request keeps getting the previous one, and a failed read is not
retried for ``ttl_s`` either.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import anyio.to_thread
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from backend.models import utcnow
from backend.public.feed import FeedRenderer, read_listing

log = logging.getLogger(__name__)


class FeedUnavailableError(RuntimeError):
    """The feed could not be read from the database just now."""


class FeedBuildError(RuntimeError):
    """The process that builds the feed failed or could not be started."""


GZIP_LEVEL = 6
"""Compressed once per rebuild, so the level costs nothing per request."""


@dataclass(frozen=True)
class Encoded:
    """One content coding of a rendering, with its strong ETag."""

    body: bytes
    etag: str


@dataclass(frozen=True)
class Representation:
    """One rendering of the feed as sent plain and gzip-compressed.

    Each coding has its own ETag (the digest of the plain bytes; ``-gzip``
    marks the compressed one), so a cache never answers a client with the
    other coding's body. Compressing once here spares every request: the
    plain JSON of 2,000 machines is about 270 kB, compressed about a tenth.
    """

    identity: Encoded
    gzip: Encoded

    @classmethod
    def of(cls, body: bytes) -> Representation:
        """Compress ``body`` and derive both ETags from its bytes alone."""
        digest = hashlib.sha256(body).hexdigest()[:32]
        packed = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        return cls(Encoded(body, f'"{digest}"'), Encoded(packed, f'"{digest}-gzip"'))


@dataclass(frozen=True)
class FeedSnapshot:
    """The feed as JSON and as GeoJSON, read at the same moment."""

    json: Representation
    geojson: Representation


def read_snapshot(engine: Engine, silent_after: timedelta, renderer: FeedRenderer
                  ) -> FeedSnapshot:
    """Read the listing once and render it both ways, hashed and compressed."""
    with engine.connect() as connection:
        machines = read_listing(connection, now=utcnow(), silent_after=silent_after)
    plain, geo = renderer.render(machines)
    return FeedSnapshot(Representation.of(plain), Representation.of(geo))


def thread_builder(engine: Engine, silent_after: timedelta
                   ) -> Callable[[], Awaitable[FeedSnapshot]]:
    """Return a coroutine function that builds a snapshot in a worker thread of this process.

    Simple, but the build (about 40 ms of Python for 2,000 machines) holds the
    interpreter lock the event loop needs: ``nx-backend serve`` builds in a
    child process instead (backend/public/builder.py).
    """
    renderer = FeedRenderer()

    async def build() -> FeedSnapshot:
        return await anyio.to_thread.run_sync(read_snapshot, engine, silent_after, renderer)

    return build


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Say whether an ``Accept-Encoding`` header allows gzip (RFC 9110 section 12.5.3)."""
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        weight = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        weights[coding.strip().lower()] = weight
    for coding in ("gzip", "x-gzip"):
        if coding in weights:
            return weights[coding] > 0
    return weights.get("*", 0.0) > 0


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Say whether an ``If-None-Match`` header names ``etag`` (RFC 9110 weak comparison)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


class PublicFeedCache:
    """Hold the newest snapshot for ``ttl_s`` seconds; rebuild it one request at a time."""

    def __init__(self, build: Callable[[], Awaitable[FeedSnapshot]], ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0:
            raise ValueError("the public feed must be cached (ttl_s > 0)")
        self.ttl_s = ttl_s
        self._build = build
        self._clock = clock
        self._snapshot: FeedSnapshot | None = None
        self._expires = 0.0
        self._failed_until = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> FeedSnapshot:
        """Return the current snapshot; raise ``FeedUnavailableError`` if none can be read."""
        snapshot = self._snapshot
        if snapshot is not None and (self._clock() < self._expires or self._lock.locked()):
            return snapshot
        async with self._lock:
            now = self._clock()
            if self._snapshot is not None and now < self._expires:
                return self._snapshot
            if now < self._failed_until:
                raise FeedUnavailableError("the public feed could not be read just now")
            try:
                snapshot = await self._build()
            except (SQLAlchemyError, FeedBuildError) as exc:
                self._failed_until = self._clock() + self.ttl_s
                # A database error's text may name hosts and SQL: its class says enough.
                reason = str(exc) if isinstance(exc, FeedBuildError) else exc.__class__.__name__
                log.warning("public feed: building it failed (%s)", reason)
                raise FeedUnavailableError("the public feed could not be read just now") from exc
            self._snapshot, self._expires = snapshot, self._clock() + self.ttl_s
            return snapshot
