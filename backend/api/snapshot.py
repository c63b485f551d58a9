"""The fleet snapshot served by ``GET /api/v1/machines``: kept current, never rebuilt per request.

One ``FleetSnapshot`` per API process holds every active machine as JSON
(backend/api/fleet_store.py). Under ``nx-backend serve`` a thread reads what
changed since its last read every ``max_age_s`` seconds (the change log the
database triggers fill, so any writer's change is seen), re-renders the pages
clients asked for lately, and compresses them once; a request then only picks
bytes. Without the thread (a test's client that runs no lifespan) a request
brings the store up to date itself, which is what ``max_age_s=0`` asks for.

Clients send back the ``cursor`` of their last answer as ``since`` and get only
the machines changed since then, plus those removed; and the weak ETag of any
answer names the state of the machines they may see, so ``If-None-Match``
gets 304 while nothing changed. Both come from the database, so any replica
answers any client (docs/backend.md, "The fleet snapshot").
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from backend.api.fleet_read import prune, read_fleet
from backend.api.fleet_store import Cursor, FleetStore

log = logging.getLogger(__name__)

GZIP_LEVEL = 6
"""Full pages are compressed once per change by the thread; deltas per request (small)."""
GZIP_MIN_BYTES = 1400
"""Smaller bodies fit a packet as they are."""
LOG_RETENTION_S = 60.0
"""Change-log rows older than this are pruned: every reader has read them long before."""
PRUNE_EVERY_S = 10.0
DELTA_WINDOW_S = 300.0
"""How far back ``since`` is answered with a delta; an older cursor gets the full listing."""
HOT_S = 60.0
"""A page asked for within this long is rendered again by the thread after each change."""
FIRST_LOAD_WAIT_S = 30.0
"""How long a request waits for the snapshot's first read before answering 503."""


class SnapshotUnavailableError(RuntimeError):
    """The snapshot has not been read from the database yet."""


PageKey = tuple[frozenset[str], int, int]
"""(areas, limit, offset): one page as one kind of caller sees it."""


@dataclass(frozen=True)
class Rendered:
    """A response body in both codings, with the state it shows."""

    generation: int
    etag: str
    identity: bytes
    gzip: bytes


def etag_of(digest: int, count: int, page: tuple[int, int] | None) -> str:
    """Name a state of the fleet (and a page of it, unless the page holds it all).

    Weak: two answers with the same state differ in their ``cursor`` alone.
    """
    material = f"{digest:032x}:{count}" + ("" if page is None else f":{page[0]}:{page[1]}")
    return f'W/"{hashlib.blake2b(material.encode(), digest_size=12).hexdigest()}"'


def _render(store: FleetStore, key: PageKey) -> Rendered:
    areas, limit, offset = key
    generation, cursor = store.generation, store.cursor
    ids = store.ids(areas)
    digest, count = store.state(areas)
    page = None if offset == 0 and limit >= count else (limit, offset)
    body = b"".join((b'{"data":[', b",".join(store.fragments(ids[offset:offset + limit])),
                     b'],"count":%d,"cursor":"%s","full":true,"removed":[]}' % (
                         count, str(cursor).encode())))
    return Rendered(generation, etag_of(digest, count, page), body,
                    gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))


class FleetSnapshot:
    """The fleet as this API process serves it."""

    def __init__(self, engine: Engine, prune_engine: Engine, *, default_threshold: int,
                 max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._engine = engine
        self.prune_engine = prune_engine
        self._threshold = default_threshold
        self._clock = clock
        self._store: FleetStore | None = None
        self._loaded = threading.Event()
        self._refresh_lock = threading.Lock()
        self._last_read = 0.0
        self._rendered: dict[PageKey, Rendered] = {}
        self._hot: dict[PageKey, float] = {}
        self._seen: list[tuple[float, Cursor]] = []
        """Cursors read, with when: the pruning horizon is one read LOG_RETENTION_S ago."""
        self._last_prune = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading --------------------------------------------------------------------------

    def refresh(self) -> FleetStore:
        """Bring the store up to date: only what changed, or everything on first use.

        A reader that has not read for half the log's retention reads it all
        again: what it missed may have been pruned.
        """
        with self._refresh_lock:
            now = self._clock()
            store = self._store
            if store is None or now - self._last_read > LOG_RETENTION_S / 2:
                found = read_fleet(self._engine, default_threshold=self._threshold)
                store = FleetStore(found.cursor, (e for e in found.entries.values()
                                                  if e is not None), at=now,
                                   base=found.floor, changes=found.changes)
                self._store = store
                self._loaded.set()
                log.info("fleet snapshot: read %d machines at %s", len(found.entries),
                         found.cursor)
            else:
                found = read_fleet(self._engine, default_threshold=self._threshold,
                                   since=store.cursor)
                store.apply(found.cursor, found.changes, found.entries, at=now)
                store.forget_before(now - DELTA_WINDOW_S)
            self._last_read = now
            self._seen.append((now, found.cursor))
            # Keep one read at least LOG_RETENTION_S old (the pruning horizon), none older.
            while len(self._seen) > 1 and now - self._seen[1][0] >= LOG_RETENTION_S:
                self._seen.pop(0)
            return store

    def _current(self) -> FleetStore:
        """Return the store to answer from, reading first when no thread keeps it current."""
        if self._thread is not None and self._thread.is_alive():
            if not self._loaded.wait(FIRST_LOAD_WAIT_S) or self._store is None:
                raise SnapshotUnavailableError("the fleet snapshot is still being read")
            return self._store
        store = self._store
        if store is None or self._clock() - self._last_read >= self.max_age_s:
            store = self.refresh()
        return store

    # -- answering ------------------------------------------------------------------------

    def page(self, areas: frozenset[str], limit: int, offset: int) -> Rendered:
        """Return one page of the machines in ``areas`` (all when empty)."""
        store = self._current()
        key = (areas, limit, offset)
        now = self._clock()
        warm = key in self._hot and self._thread is not None and self._thread.is_alive()
        self._hot[key] = now
        rendered = self._rendered.get(key)
        # A page kept warm by the thread may be one render behind: it is being redone.
        if rendered is not None and (rendered.generation == store.generation or warm):
            return rendered
        rendered = _render(store, key)
        self._rendered[key] = rendered
        return rendered

    def state_etag(self, areas: frozenset[str]) -> str:
        """Return the ETag of the state of the machines in ``areas``."""
        digest, count = self._current().state(areas)
        return etag_of(digest, count, None)

    def delta(self, areas: frozenset[str], since: Cursor) -> tuple[bytes, str] | None:
        """Return the JSON of what changed since ``since`` and its ETag; None: send it all."""
        store = self._current()
        changed = store.delta(since)
        if changed is None and not store.cursor.covers(since):
            # The cursor came from a replica that has read further: catch up once.
            store = self.refresh()
            changed = store.delta(since)
        if changed is None:
            return None
        data: list[str] = []
        removed: list[str] = []
        for machine_id, was_in in sorted(changed.items()):
            present, area = store.area_of(machine_id)
            if present and (not areas or area in areas):
                data.append(machine_id)
            elif not areas or was_in & areas:
                removed.append(machine_id)
        digest, count = store.state(areas)
        body = b"".join((b'{"data":[', b",".join(store.fragments(data)),
                         b'],"count":%d,"cursor":"%s","full":false,"removed":[%s]}' % (
                             count, str(store.cursor).encode(),
                             ",".join(f'"{m}"' for m in removed).encode())))
        return body, etag_of(digest, count, None)

    # -- the thread -----------------------------------------------------------------------

    def start(self) -> None:
        """Keep the snapshot current from a thread of its own."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fleet-snapshot", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it finishes the read under way)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _run(self) -> None:
        interval = max(self.max_age_s, 0.05)
        while not self._stop.is_set():
            started = self._clock()
            try:
                self._step()
            except SQLAlchemyError as exc:
                # Keep serving what was read; the next turn tries again.
                log.warning("fleet snapshot: reading changes failed (%s)",
                            exc.__class__.__name__)
            except Exception:
                log.exception("fleet snapshot: refresh failed")
            self._stop.wait(max(0.0, interval - (self._clock() - started)))

    def _step(self) -> None:
        store = self.refresh()
        now = self._clock()
        for key, asked in list(self._hot.items()):
            if now - asked > HOT_S:
                self._hot.pop(key, None)
                self._rendered.pop(key, None)
            elif (done := self._rendered.get(key)) is None or done.generation != store.generation:
                self._rendered[key] = _render(store, key)
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            self._prune(now)

    def _prune(self, now: float) -> None:
        at, horizon = self._seen[0]
        if now - at >= LOG_RETENTION_S:
            gone = prune(self.prune_engine, horizon)
            log.debug("fleet snapshot: pruned %d change-log rows below %s", gone, horizon)
