"""Build the feed's snapshots in a child process, off the API's interpreter lock.

A rebuild (every second) is about 40 ms of Python for 2,000 machines. Done in
the API process, even in a worker thread, it takes the interpreter lock from
the event loop, and at 500 requests/s each rebuild held up about fifty of them
for up to 100 ms (the benchmark's slow tail). In a child process it runs on
the other core; the API only unpickles the finished bytes.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from backend.db import PG_DEAD_LINK_S, make_engine
from backend.public.cache import FeedBuildError, FeedSnapshot, read_snapshot
from backend.public.feed import FeedRenderer

log = logging.getLogger(__name__)


@dataclass
class _ChildState:
    engine: Engine
    silent_after: timedelta
    renderer: FeedRenderer


_child: _ChildState | None = None
"""The child process's engine and fragment cache, made once by ``_start_child``."""


def _start_child(database_url: str, silent_after_s: float, dead_link_s: float) -> None:
    global _child  # one builder per child process, made by its initializer
    # Ctrl-C reaches the whole process group; the API stops this child itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _child = _ChildState(make_engine(database_url, dead_link_s=dead_link_s),
                         timedelta(seconds=silent_after_s), FeedRenderer())


def _build_in_child() -> FeedSnapshot:
    if _child is None:
        raise FeedBuildError("the feed builder process was not initialised")
    try:
        return read_snapshot(_child.engine, _child.silent_after, _child.renderer)
    except SQLAlchemyError as exc:
        # Not every SQLAlchemy error survives pickling back to the parent.
        raise FeedBuildError(f"database error ({exc.__class__.__name__})") from None


class ProcessBuilder:
    """Build snapshots in one child process, started on first use and restarted if it dies."""

    def __init__(self, database_url: str, silent_after: timedelta,
                 dead_link_s: float = PG_DEAD_LINK_S) -> None:
        self._args = (database_url, silent_after.total_seconds(), dead_link_s)
        self._executor: ProcessPoolExecutor | None = None

    async def __call__(self) -> FeedSnapshot:
        """Build one snapshot in the child process."""
        if self._executor is None:
            # spawn, not fork: the API process has threads (ingest, uvicorn's pool).
            self._executor = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child, initargs=self._args)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, _build_in_child)
        except BrokenProcessPool:
            self.close()  # the next call starts a fresh child
            raise FeedBuildError("the feed builder process died") from None
        except OSError as exc:  # no process could be started (limits, memory)
            self.close()
            raise FeedBuildError(f"cannot start the feed builder process: {exc}") from None

    def close(self) -> None:
        """Stop the child process, if one was started."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
