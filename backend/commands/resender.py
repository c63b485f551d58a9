"""Send due commands and expire old ones: one ``tick`` per period, in a thread or a job runner."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from backend.commands.publisher import CommandPublisher
from backend.commands.store import claim_due, expire_due
from backend.config import Settings
from backend.db import session_scope
from backend.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick did."""

    sent: int
    expired: int
    refused: int


def tick(engine: Engine, publisher: CommandPublisher, settings: Settings,
         now: datetime) -> TickResult:
    """Expire what is past its time, then send every pending command that is due.

    Each command's next send is moved past the resend timeout and committed
    before its copy is published: a crash in between delays it by one
    timeout; it never loses or floods it.
    """
    with session_scope(engine) as session:
        expired = expire_due(session=session, now=now)
        due = claim_due(session=session, now=now, resend_after_s=settings.commands_resend_s,
                        limit=settings.commands_batch)
    refused = sum(not publisher.publish(item) for item in due)
    if due or expired:
        log.info("commands: %d sent, %d expired, %d not taken by paho",
                 len(due) - refused, expired, refused)
    return TickResult(sent=len(due) - refused, expired=expired, refused=refused)


class CommandResender:
    """Call ``tick`` every ``commands_poll_s`` (sooner when ``wake`` is called) until ``stop``."""

    def __init__(self, engine: Engine, publisher: CommandPublisher, settings: Settings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.publisher = publisher
        self.settings = settings
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run the loop in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="nx-commands", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tick now (a command was just stored)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the tick in progress."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                tick(self.engine, self.publisher, self.settings, self.clock())
            except Exception:
                # A database hiccup must not end delivery: the next tick tries again.
                log.exception("command resend tick failed; retrying")
            self._wake.wait(self.settings.commands_poll_s)
