"""Deliver the outbox: claim due notifications, send them, record the outcome.

Deliveries run on a thread pool, one destination (route) per worker at a
time: a slow or dead endpoint holds one worker for at most its timeout per
attempt, and its circuit breaker then keeps it out of the claims, so it never
delays another destination. Failures come back with exponential backoff and
jitter; after ``notify_max_attempts`` a delivery is failed for good and a
``notification_failed`` alert opens for its route (and goes to the routes that
take that type).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from backend.alerts.rules import AlertSpec
from backend.alerts.store import open_alert, resolve_alerts
from backend.config import Settings
from backend.db import session_scope
from backend.models import AlertType, Channel, NotificationRoute, Severity, utcnow
from backend.notify.backoff import retry_delay
from backend.notify.breaker import Breakers
from backend.notify.channels import DeliveryError, Destination, Message, Sender
from backend.notify.claims import Claimed, claim_due, mark_delivered, mark_failed, release
from backend.notify.jobs import escalate_due, send_digests

log = logging.getLogger(__name__)

# Stop taking a group's next delivery when less than this share of the lease is left.
LEASE_MARGIN = 0.2


def failure_subject(route_id: int) -> str:
    """Return the subject of a route's notification_failed alert."""
    return f"route/{route_id}"


def default_senders(settings: Settings) -> dict[str, Sender]:
    """Return a sender per channel that the settings can deliver to."""
    from backend.notify.channels.chat import AppriseSender
    from backend.notify.channels.email import EmailSender, SmtpSettings
    from backend.notify.channels.webhook import WebhookSender

    senders: dict[str, Sender] = {Channel.WEBHOOK.value: WebhookSender(),
                                  Channel.APPRISE.value: AppriseSender()}
    if settings.notify_smtp_host:
        senders[Channel.EMAIL.value] = EmailSender(SmtpSettings(
            host=settings.notify_smtp_host, port=settings.notify_smtp_port,
            security=settings.notify_smtp_security, username=settings.notify_smtp_username,
            password=settings.notify_smtp_password, sender=settings.notify_smtp_from,
            ca_file=str(settings.notify_smtp_ca_file) if settings.notify_smtp_ca_file else None,
        ))
    return senders


class Dispatcher:
    """Deliver due notifications, in a background thread (``start``) or a step at a time."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        senders: Mapping[str, Sender] | None = None,
        clock: Callable[[], datetime] = utcnow,
        rand: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.senders = dict(senders) if senders is not None else default_senders(settings)
        self.clock = clock
        self.rand = rand or random.Random()  # noqa: S311 - jitter
        self.breakers = Breakers(threshold=settings.notify_breaker_failures,
                                 cooldown_s=settings.notify_breaker_cooldown_s)
        self._pool = ThreadPoolExecutor(settings.notify_workers, thread_name_prefix="nx-notify")
        self._busy: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the loop ---------------------------------------------------------------

    def start(self) -> None:
        """Poll for due notifications every ``notify_poll_s`` until ``stop``."""
        self._thread = threading.Thread(target=self._run, name="nx-notify-dispatcher",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop claiming, let deliveries in flight finish, hand back the rest."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._pool.shutdown(wait=True)
        for sender in self.senders.values():
            close = getattr(sender, "close", None)
            if callable(close):
                close()

    def _run(self) -> None:
        # Escalations and digests are a periodic job run once across every process
        # (backend/jobs/catalog.notify_job), not once per dispatcher.
        while not self._stop.is_set():
            try:
                self.dispatch_once()
            except Exception:
                # A database hiccup must not end deliveries: try again next poll.
                log.exception("notification dispatch failed; retrying")
            self._stop.wait(self.settings.notify_poll_s)

    def run_jobs(self) -> tuple[int, int]:
        """Escalate what waited too long and queue ended quiet hours' digests; say how many."""
        now = self.clock()
        with session_scope(self.engine) as session:
            escalated = escalate_due(session, now=now)
        with session_scope(self.engine) as session:
            digests = send_digests(session, now=now)
        return escalated, digests

    def dispatch_once(self) -> int:
        """Claim what is due for idle destinations and hand it to the workers; return how many."""
        with self._lock:
            exclude = set(self._busy)
        exclude |= {int(key) for key in self.breakers.open_keys()}
        with session_scope(self.engine) as session:
            claimed = claim_due(session, now=self.clock(), limit=self.settings.notify_batch,
                                lease=timedelta(seconds=self.settings.notify_lease_s),
                                exclude_routes=exclude)
        groups: dict[int, list[Claimed]] = defaultdict(list)
        for item in claimed:
            groups[item.route_id].append(item)
        for route_id, items in groups.items():
            with self._lock:
                self._busy.add(route_id)
            self._pool.submit(self._deliver_group, route_id, items)
        return len(claimed)

    def busy(self) -> bool:
        """Say whether any delivery is in flight."""
        with self._lock:
            return bool(self._busy)

    # -- one destination ----------------------------------------------------------

    def _deliver_group(self, route_id: int, items: list[Claimed]) -> None:
        try:
            self._deliver_all(route_id, items)
        except Exception:
            log.exception("deliveries to route %d stopped; their lease will free them", route_id)
        finally:
            with self._lock:
                self._busy.discard(route_id)

    def _deliver_all(self, route_id: int, items: list[Claimed]) -> None:
        destination = self._destination(route_id)
        started = time.monotonic()
        budget = self.settings.notify_lease_s * (1 - LEASE_MARGIN)
        for index, item in enumerate(items):
            timeout = destination.timeout_s if destination else self.settings.notify_timeout_s
            if (self._stop.is_set() or self.breakers.is_open(str(route_id))
                    or (index and time.monotonic() - started + timeout > budget)):
                with session_scope(self.engine) as session:
                    release(session, items[index:], due=self.clock())
                return
            self._deliver_one(destination, item)

    def _destination(self, route_id: int) -> Destination | None:
        with Session(self.engine) as session:
            route = session.get(NotificationRoute, route_id)
            if route is None or not route.enabled:
                return None
            # A delivery must end within its lease, or a second dispatcher would take it.
            timeout = min(route.timeout_s or self.settings.notify_timeout_s,
                          self.settings.notify_lease_s * (1 - LEASE_MARGIN))
            return Destination(route_id, route.name, route.channel, route.target, route.secret,
                               timeout)

    def _message(self, item: Claimed) -> Message:
        payload: dict[str, Any] = dict(item.payload)
        path = str(payload.pop("console_path", "/"))
        payload["console_url"] = self.settings.notify_console_url.rstrip("/") + path
        return Message(item.delivery_id, item.event, payload)

    def _deliver_one(self, destination: Destination | None, item: Claimed) -> None:
        if destination is None:
            self._record_failure(item, "the route is deleted or disabled", final=True)
            return
        sender = self.senders.get(destination.channel)
        if sender is None:
            self._record_failure(item, f"no sender for channel {destination.channel}",
                                 final=True)
            return
        try:
            sender(destination, self._message(item))
        except DeliveryError as exc:
            self._record_failure(item, str(exc) or type(exc).__name__, final=False)
            if self.breakers.failed(str(item.route_id)):
                log.warning("route %s: circuit open for %.0f s after failed deliveries",
                            destination.name, self.breakers.cooldown_s)
            return
        except Exception as exc:
            log.exception("sender for route %s raised", destination.name)
            self._record_failure(item, type(exc).__name__, final=False)
            self.breakers.failed(str(item.route_id))
            return
        self.breakers.succeeded(str(item.route_id))
        with session_scope(self.engine) as session:
            if mark_delivered(session, item, now=self.clock()):
                resolve_alerts(session, AlertType.NOTIFICATION_FAILED,
                               failure_subject(item.route_id))

    def _record_failure(self, item: Claimed, error: str, *, final: bool) -> None:
        attempts = item.attempts + 1
        give_up = final or attempts >= self.settings.notify_max_attempts
        now = self.clock()
        retry_at = None if give_up else now + timedelta(seconds=retry_delay(
            attempts, base_s=self.settings.notify_backoff_base_s,
            max_s=self.settings.notify_backoff_max_s, rand=self.rand))
        with session_scope(self.engine) as session:
            if not mark_failed(session, item, error=error, retry_at=retry_at):
                return
            if give_up:
                log.warning("notification %s to route %d failed for good after %d attempts: %s",
                            item.delivery_id, item.route_id, attempts, error)
                spec = AlertSpec(
                    AlertType.NOTIFICATION_FAILED, Severity.WARNING,
                    failure_subject(item.route_id), None,
                    f"notifications to route {item.route_id} fail: {error}"[:500])
                open_alert(session, spec, details={"route_id": item.route_id,
                                                   "delivery_id": item.delivery_id}, now=now)
            else:
                log.info("notification %s to route %d failed (attempt %d): %s",
                         item.delivery_id, item.route_id, attempts, error)
