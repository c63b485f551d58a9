"""The dispatcher against real HTTP receivers on loopback: signed, retried, isolated, given up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from backend.alerts.rules import slot_alert_spec
from backend.alerts.store import open_alert
from backend.config import Settings
from backend.db import make_engine
from backend.models import Alert, AlertType, Notification, NotificationRoute, utcnow
from backend.notify.claims import claim_due
from backend.notify.dispatcher import Dispatcher
from backend.notify.signing import verify
from tests.backend.conftest import register
from tests.notify_receiver import webhook_receiver
from tests.waiting import wait_until

SECRET = "whsec-test"


def _settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test", "database_url": url, "notify_poll_s": 0.02,
        "notify_backoff_base_s": 0.01, "notify_backoff_max_s": 0.05, "notify_timeout_s": 2,
        "notify_max_attempts": 6, "notify_breaker_failures": 3,
        "notify_breaker_cooldown_s": 0.2, "notify_console_url": "https://console.example",
    }
    values.update(overrides)
    return Settings.model_validate(values)


@contextmanager
def running(engine: Engine, settings: Settings) -> Iterator[Dispatcher]:
    dispatcher = Dispatcher(engine, settings)
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        dispatcher.stop()


def _route(session: Session, name: str, url: str, **rules: object) -> int:
    route = NotificationRoute(name=name, channel="webhook", target=url, secret=SECRET, **rules)
    session.add(route)
    session.commit()
    assert route.id is not None
    return route.id


def _empty(session: Session, machine: str, slot: int = 1) -> None:
    open_alert(session, slot_alert_spec(AlertType.EMPTY_SLOT, machine, slot, "naloxone", 0, 2))
    session.commit()


def _notes(engine: Engine) -> list[Notification]:
    with Session(engine) as session:
        return list(session.exec(select(Notification).order_by(col(Notification.id))).all())


def test_a_webhook_is_signed_and_says_what_happened(engine: Engine, migrated_url: str) -> None:
    with webhook_receiver() as hook, Session(engine) as session:
        register(session, "m1", area="north")
        _route(session, "ops", hook.url)
        _empty(session, "m1")
        with running(engine, _settings(migrated_url)):
            wait_until(lambda: len(hook.delivered()) == 1, what="the webhook")
            wait_until(lambda: _notes(engine)[0].state == "delivered", what="delivered state")
        [got] = hook.delivered()
        assert verify(SECRET, got.headers["x-naloxnet-signature"], got.body, now=time.time())
        assert not verify("other", got.headers["x-naloxnet-signature"], got.body,
                          now=time.time())
        assert not verify(SECRET, got.headers["x-naloxnet-signature"], got.body + b" ",
                          now=time.time())
        body = json.loads(got.body)
        [note] = _notes(engine)
        assert got.headers["x-naloxnet-delivery"] == note.delivery_id == body["delivery_id"]
        assert body["event"] == "alert.opened"
        assert body["alert"]["type"] == "empty_slot"
        assert body["alert"]["severity"] == "critical"
        assert body["alert"]["subject"] == "m1/slot/1"
        assert body["alert"]["areas"] == ["north"]
        assert body["console_url"] == "https://console.example/machine?machine=m1"
        assert (note.attempts, note.last_error) == (1, None)


def test_retries_keep_the_delivery_id(engine: Engine, migrated_url: str) -> None:
    with webhook_receiver(fail_first=3) as hook, Session(engine) as session:
        register(session, "m1")
        _route(session, "ops", hook.url)
        _empty(session, "m1")
        # The breaker would pause the route after three failures; let it count to five.
        with running(engine, _settings(migrated_url, notify_breaker_failures=5)):
            wait_until(lambda: len(hook.delivered()) == 1, what="the fourth attempt")
            wait_until(lambda: _notes(engine)[0].state == "delivered", what="delivered state")
        ids = {r.headers["x-naloxnet-delivery"] for r in hook.requests}
        assert len(hook.requests) == 4
        assert ids == {_notes(engine)[0].delivery_id}
        assert _notes(engine)[0].attempts == 4


def test_a_hanging_receiver_does_not_delay_another(engine: Engine, migrated_url: str) -> None:
    with webhook_receiver(hang=True) as dead, webhook_receiver() as live, \
            Session(engine) as session:
        register(session, "m1", slots=3)
        _route(session, "dead", dead.url, timeout_s=5)
        _route(session, "live", live.url)
        with running(engine, _settings(migrated_url)):
            for slot in (1, 2, 3):
                started = time.monotonic()
                _empty(session, "m1", slot)
                wait_until(lambda n=slot: len(live.delivered()) == n,  # type: ignore[misc]
                           what="the live receiver")
                # Far below the dead receiver's 5 s timeout, while it still hangs.
                assert time.monotonic() - started < 2.0
            dead_notes = [n for n in _notes(engine) if n.destination == dead.url.rsplit("/", 1)[0]]
            assert all(n.state in ("pending", "delivering") for n in dead_notes)
            dead.released.set()  # so that stopping does not wait out its timeout


@pytest.mark.allow_logged_errors
def test_giving_up_leaves_it_failed_and_raises_an_alert(engine: Engine, migrated_url: str
                                                        ) -> None:
    with webhook_receiver(always_fail=True) as broken, webhook_receiver() as admins, \
            Session(engine) as session:
        register(session, "m1")
        broken_id = _route(session, "broken", broken.url, alert_types=["empty_slot"])
        _route(session, "admins", admins.url, alert_types=["notification_failed"])
        _empty(session, "m1")
        with running(engine, _settings(migrated_url, notify_max_attempts=3,
                                       notify_breaker_failures=10)):
            wait_until(lambda: len(admins.delivered()) == 1, what="the admins' notification")
        failed = next(n for n in _notes(engine) if n.route_id == broken_id)
        assert (failed.state, failed.attempts, failed.last_error) == ("failed", 3, "HTTP 500")
        assert len(broken.requests) == 3
        body = json.loads(admins.delivered()[0].body)
        assert body["alert"]["type"] == "notification_failed"
        assert body["alert"]["subject"] == f"route/{broken_id}"
        with Session(engine) as check:
            alert = check.exec(select(Alert).where(Alert.type == "notification_failed")).one()
            assert alert.status == "open"


def test_an_open_circuit_holds_a_dead_route_back(engine: Engine, migrated_url: str) -> None:
    with webhook_receiver(always_fail=True) as broken, Session(engine) as session:
        register(session, "m1", slots=4)
        _route(session, "broken", broken.url)
        for slot in range(1, 5):
            _empty(session, "m1", slot)
        settings = _settings(migrated_url, notify_breaker_failures=2,
                             notify_breaker_cooldown_s=30, notify_backoff_base_s=0.001,
                             notify_backoff_max_s=0.001)
        with running(engine, settings) as dispatcher:
            wait_until(lambda: dispatcher.breakers.open_keys() != set(), what="an open circuit")
            tried = len(broken.requests)
            wait_until(lambda: not dispatcher.busy(), what="the group to hand back its rest")
            assert dispatcher.dispatch_once() == 0
        assert tried == len(broken.requests) == 2
        assert sum(n.attempts for n in _notes(engine)) == 2


def test_a_claim_past_its_lease_is_taken_over(engine: Engine, migrated_url: str) -> None:
    """A dispatcher that died mid-delivery leaves a claim; its lease ends; another delivers."""
    with webhook_receiver() as hook, Session(engine) as session:
        register(session, "m1")
        _route(session, "ops", hook.url)
        _empty(session, "m1")
        now = utcnow()
        [claimed] = claim_due(session, now=now, limit=10, lease=timedelta(seconds=30))
        session.commit()
        assert claim_due(session, now=now, limit=10, lease=timedelta(seconds=30)) == []
        session.commit()
        later = Dispatcher(engine, _settings(migrated_url),
                           clock=lambda: utcnow() + timedelta(seconds=31))
        later.start()
        try:
            wait_until(lambda: len(hook.delivered()) == 1, what="the takeover")
        finally:
            later.stop()
        assert hook.delivery_ids() == [claimed.delivery_id]


def test_two_dispatchers_deliver_each_notification_once(migrated_url: str) -> None:
    """Two dispatchers with their own engines (as two processes) on one database."""
    engines = [make_engine(migrated_url, immediate=True) for _ in range(2)]
    try:
        with webhook_receiver() as hook, Session(engines[0]) as session:
            register(session, "m1", slots=30)
            for n in range(3):
                _route(session, f"r{n}", hook.url)
            for slot in range(1, 31):
                _empty(session, "m1", slot)
            settings = _settings(migrated_url)
            dispatchers = [Dispatcher(e, settings) for e in engines]
            for d in dispatchers:
                d.start()
            try:
                wait_until(lambda: len(hook.delivered()) >= 90, what="90 deliveries")
                wait_until(lambda: all(n.state == "delivered" for n in _notes(engines[0])),
                           what="all delivered")
            finally:
                for d in dispatchers:
                    d.stop()
            ids = hook.delivery_ids()
            assert len(ids) == len(set(ids)) == 90
    finally:
        for e in engines:
            e.dispose()
