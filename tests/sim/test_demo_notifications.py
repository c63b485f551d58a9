"""The demo's notification sinks: its routes reach a signed webhook inbox and an SMTP sink."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from sqlmodel import Session

from backend.alerts.rules import AlertSpec, slot_alert_spec
from backend.alerts.store import open_alert
from backend.config import Settings
from backend.db import make_engine, migrate
from backend.models import AlertType, Severity
from backend.notify.dispatcher import Dispatcher
from backend.notify.signing import signature
from simulators.demo import Demo
from simulators.demo_config import DemoConfig
from tests.backend.conftest import register
from tests.waiting import wait_until


def test_the_demo_routes_alerts_to_its_inbox_and_mail_sink(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    (tmp_path / "logs").mkdir()
    demo = Demo(DemoConfig(workdir=tmp_path))
    env = demo._start_sinks(url, tmp_path, 8501)
    engine = make_engine(url, immediate=True)
    try:
        assert demo.inbox is not None
        assert demo.mail is not None
        with Session(engine) as session:
            register(session, "m1")
            open_alert(session, slot_alert_spec(AlertType.EMPTY_SLOT, "m1", 1, "naloxone", 0, 2))
            open_alert(session, AlertSpec(AlertType.DOOR_OPEN, Severity.WARNING, "m1", "m1",
                                          "door open"))
            session.commit()
        settings = Settings.model_validate({
            "environment": "test", "database_url": url, "notify_poll_s": 0.02,
            **{k.removeprefix("NX_").lower(): v for k, v in env.items()}})
        dispatcher = Dispatcher(engine, settings)
        dispatcher.start()
        try:
            inbox = demo.inbox
            wait_until(lambda: len(inbox.seen) == 2, what="both webhooks in the inbox")
            wait_until(lambda: demo.mail is not None and demo.mail.count == 1,
                       what="the critical alert's e-mail")
        finally:
            dispatcher.stop()
        listed = httpx.get(inbox.url, timeout=5).json()
        assert {(n["type"], n["event"]) for n in listed["newest"]} == {
            ("empty_slot", "alert.opened"), ("door_open", "alert.opened")}
        mails = [json.loads(line) for line in (tmp_path / "logs" / "mail.log").read_text()
                 .splitlines()]
        assert mails[0]["to"] == ["outreach-lead@demo.invalid"]
        assert "empty_slot" in mails[0]["subject"]
        # A repeat is acknowledged and dropped; a bad signature is refused.
        body = b'{"event":"alert.opened","alert":{}}'
        good = {"X-NaloxNet-Signature": signature(inbox.secret, int(time.time()), body),
                "X-NaloxNet-Delivery": listed["newest"][0]["delivery_id"]}
        assert httpx.post(inbox.url, content=body, headers=good, timeout=5).status_code == 200
        bad = {**good, "X-NaloxNet-Signature": signature("wrong", int(time.time()), body)}
        assert httpx.post(inbox.url, content=body, headers=bad, timeout=5).status_code == 401
        after = httpx.get(inbox.url, timeout=5).json()
        assert (after["received"], after["repeats_dropped"]) == (2, 1)
    finally:
        engine.dispose()
        demo.stop()
