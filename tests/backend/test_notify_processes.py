"""Notifications from real backend processes: ``serve`` end to end, ``notify`` killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
from sqlmodel import Session, select

from backend.models import Notification, NotificationRoute
from backend.notify.signing import verify
from simulators.broker import MosquittoBroker, free_port
from tests.backend.conftest import register
from tests.backend.helpers import WAIT_S, events_topic, machine_publisher, vend
from tests.backend.procs import REPO
from tests.conftest import BACKEND_PASSWORD
from tests.notify_receiver import webhook_receiver
from tests.waiting import wait_until

SECRET = "whsec-proc"


def _env(url: str, broker: MosquittoBroker | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": url,
           "NX_MQTT_PASSWORD": BACKEND_PASSWORD, "NX_NOTIFY_POLL_S": "0.05", **extra}
    if broker is not None:
        env.update({"NX_MQTT_HOST": broker.host, "NX_MQTT_PORT": str(broker.port)})
    return env


def _backend(*args: str) -> list[str]:
    return [sys.executable, "-c", "from backend.cli import main; main()", *args]


def _add_route(session: Session, url: str, *types: str) -> None:
    session.add(NotificationRoute(name="ops", channel="webhook", target=url, secret=SECRET,
                                  alert_types=list(types)))
    session.commit()


def test_serve_sends_a_signed_webhook_for_the_vend_that_empties_a_slot(
    migrated_url: str, session: Session, mosquitto: MosquittoBroker
) -> None:
    register(session, "test-001", count=1, threshold=0)
    with webhook_receiver() as hook:
        _add_route(session, hook.url, "empty_slot")
        port = free_port()
        server = subprocess.Popen(_backend("serve", "--port", str(port)), cwd=REPO,
                                  env=_env(migrated_url, mosquitto), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        try:
            def up() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                except httpx.TransportError:
                    return server.poll() is not None
            wait_until(up, what="the API")
            assert server.poll() is None
            publisher = machine_publisher(mosquitto, "test-001")
            try:
                sent = time.monotonic()
                publisher.publish_all([(events_topic("test-001"), vend("test-001", 1).to_bytes())])
                wait_until(lambda: len(hook.delivered()) >= 1, timeout=WAIT_S,
                           what="the webhook")
                latency = time.monotonic() - sent
            finally:
                publisher.close()
        finally:
            server.terminate()
            _, err = server.communicate(timeout=WAIT_S)
        assert " ERROR " not in err, err
        print(f"dispense -> signed webhook received: {latency * 1000:.0f} ms")
        got = hook.delivered()[0]
        assert verify(SECRET, got.headers["x-naloxnet-signature"], got.body, now=time.time())
        body = json.loads(got.body)
        assert (body["event"], body["alert"]["type"]) == ("alert.opened", "empty_slot")
        assert body["alert"]["subject"] == "test-001/slot/1"


def test_a_dispatcher_killed_mid_delivery_loses_nothing(migrated_url: str,
                                                       session: Session) -> None:
    """kill -9 while the receiver holds a request; a new dispatcher delivers it, same id."""
    from backend.alerts.rules import slot_alert_spec
    from backend.alerts.store import open_alert
    from backend.models import AlertType

    register(session, "m1", slots=5)
    with webhook_receiver(hang=True) as hook:
        _add_route(session, hook.url)
        for slot in range(1, 6):
            open_alert(session, slot_alert_spec(AlertType.EMPTY_SLOT, "m1", slot, "n", 0, 2))
        session.commit()
        env = _env(migrated_url, NX_NOTIFY_LEASE_S="2", NX_NOTIFY_TIMEOUT_S="1")
        first = subprocess.Popen(_backend("notify"), cwd=REPO, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # The receiver has the first request and holds it: the dispatcher is mid-delivery.
            wait_until(lambda: hook.hanging() == 1, what="a delivery in flight")
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(WAIT_S)
        held = hook.held_ids()
        hook.hang = False
        hook.released.set()
        second = subprocess.Popen(_backend("notify"), cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            def all_delivered() -> bool:
                session.rollback()  # a fresh snapshot
                notes = session.exec(select(Notification)).all()
                return len(notes) == 5 and all(n.state == "delivered" for n in notes)
            wait_until(all_delivered, what="every notification delivered")
        finally:
            second.terminate()
            _, err = second.communicate(timeout=WAIT_S)
        assert " ERROR " not in err, err
        ids = set(hook.delivery_ids())
        expected = {n.delivery_id for n in session.exec(select(Notification)).all()}
        # At least once; deduplicated by delivery id, exactly once.
        assert ids == expected
        assert held <= ids
