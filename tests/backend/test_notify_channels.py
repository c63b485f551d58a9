"""E-mail against a real aiosmtpd server (STARTTLS or TLS, with AUTH); Apprise to loopback."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from backend.alerts.rules import slot_alert_spec
from backend.alerts.store import open_alert
from backend.config import Settings
from backend.models import AlertType, Notification, NotificationRoute
from backend.notify.dispatcher import Dispatcher
from backend.provisioning.certs import make_ca, make_server_cert
from simulators.broker import free_port
from tests.backend.conftest import register
from tests.notify_receiver import webhook_receiver
from tests.waiting import wait_until

USER, PASSWORD = "nx-mailer", "mail-password"


@dataclass
class Inbox:
    """What the SMTP server accepted."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.inbox.lock:
            self.inbox.messages.append(parsed)  # type: ignore[arg-type]
            self.inbox.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


def _tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    ca = make_ca("test mail CA")
    leaf = make_server_cert(ca, ["127.0.0.1", "localhost"])
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    (tmp_path / "cert.pem").write_bytes(leaf.cert_pem())
    (tmp_path / "key.pem").write_bytes(leaf.key_pem())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context, tmp_path / "ca.pem"


@contextmanager
def smtp_server(tmp_path: Path, security: str) -> Iterator[tuple[Inbox, int, Path]]:
    """Run aiosmtpd on loopback requiring TLS (STARTTLS or implicit) and AUTH."""
    inbox = Inbox()
    context, ca_file = _tls(tmp_path)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER
              and auth_data.password.decode() == PASSWORD)
        if ok:
            inbox.logins.append(USER)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    port = free_port()
    options: dict[str, Any] = {"authenticator": authenticate}
    if security == "starttls":
        options.update(tls_context=context, require_starttls=True, auth_require_tls=True)
    else:
        # aiosmtpd counts only STARTTLS as TLS for AUTH; this socket is TLS from the start.
        options.update(ssl_context=context, auth_require_tls=False)
    controller = Controller(_Handler(inbox), hostname="127.0.0.1", port=port,
                            server_hostname="localhost", **options)
    controller.start()
    try:
        yield inbox, port, ca_file
    finally:
        controller.stop()


def _settings(url: str, port: int, ca_file: Path, security: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test", "database_url": url, "notify_poll_s": 0.02,
        "notify_backoff_base_s": 0.01, "notify_backoff_max_s": 0.02, "notify_timeout_s": 5,
        "notify_smtp_host": "localhost", "notify_smtp_port": port,
        "notify_smtp_security": security, "notify_smtp_username": USER,
        "notify_smtp_password": PASSWORD, "notify_smtp_from": "alerts@naloxnet.test",
        "notify_smtp_ca_file": str(ca_file), "notify_console_url": "https://console.test",
    }
    values.update(extra)
    return Settings.model_validate(values)


def _open_empty(engine: Engine, channel: str, target: str) -> None:
    with Session(engine) as session:
        register(session, "m1")
        session.add(NotificationRoute(name="route", channel=channel, target=target))
        session.commit()
        open_alert(session, slot_alert_spec(AlertType.EMPTY_SLOT, "m1", 1, "naloxone", 0, 2))
        session.commit()


def _note(engine: Engine) -> Notification:
    with Session(engine) as session:
        return session.exec(select(Notification).order_by(col(Notification.id))).first()  # type: ignore[return-value]


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_an_email_goes_out_over_tls_with_auth_as_text_and_html(
    engine: Engine, migrated_url: str, tmp_path: Path, security: str
) -> None:
    with smtp_server(tmp_path, security) as (inbox, port, ca_file):
        _open_empty(engine, "email", "lead@example.org, van@example.org")
        dispatcher = Dispatcher(engine, _settings(migrated_url, port, ca_file, security))
        dispatcher.start()
        try:
            wait_until(lambda: len(inbox.messages) == 1, what="the e-mail",
                       timeout=10)
            wait_until(lambda: _note(engine).state == "delivered", what="delivered state")
        finally:
            dispatcher.stop()
    [mail] = inbox.messages
    assert inbox.logins == [USER]
    assert sorted(inbox.recipients[0]) == ["lead@example.org", "van@example.org"]
    assert mail["Subject"] == "[NaloxNet] CRITICAL empty_slot opened: m1/slot/1"
    assert mail["X-NaloxNet-Delivery"] == _note(engine).delivery_id
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "m1 slot 1 (naloxone) is empty" in text.get_content()
    assert "https://console.test/machine?machine=m1" in text.get_content()
    assert "<table>" in html.get_content()


def test_a_wrong_smtp_password_is_retried_and_shown(engine: Engine, migrated_url: str,
                                                    tmp_path: Path) -> None:
    with smtp_server(tmp_path, "starttls") as (inbox, port, ca_file):
        _open_empty(engine, "email", "lead@example.org")
        settings = _settings(migrated_url, port, ca_file, "starttls",
                             notify_smtp_password="wrong", notify_max_attempts=2)
        dispatcher = Dispatcher(engine, settings)
        dispatcher.start()
        try:
            wait_until(lambda: _note(engine).state == "failed", what="giving up")
        finally:
            dispatcher.stop()
    note = _note(engine)
    assert (note.attempts, note.last_error) == (2, "SMTP 535")
    assert inbox.messages == []


def test_apprise_delivers_through_its_json_service(engine: Engine, migrated_url: str) -> None:
    with webhook_receiver() as hook:
        target = hook.url.replace("http://", "json://")
        _open_empty(engine, "apprise", target)
        settings = Settings(environment="test", database_url=migrated_url, notify_poll_s=0.02)
        dispatcher = Dispatcher(engine, settings)
        dispatcher.start()
        try:
            wait_until(lambda: len(hook.delivered()) == 1, what="the Apprise post")
            wait_until(lambda: _note(engine).state == "delivered", what="delivered state")
        finally:
            dispatcher.stop()
    body = json.loads(hook.delivered()[0].body)
    assert body["title"] == "[NaloxNet] CRITICAL empty_slot opened: m1/slot/1"
    assert "m1 slot 1 (naloxone) is empty" in body["message"]
    assert body["type"] == "failure"  # critical -> Apprise's failure type


def test_apprise_failure_is_retried(engine: Engine, migrated_url: str) -> None:
    with webhook_receiver(fail_first=2) as hook:
        _open_empty(engine, "apprise", hook.url.replace("http://", "json://"))
        settings = Settings(environment="test", database_url=migrated_url, notify_poll_s=0.02,
                            notify_backoff_base_s=0.01, notify_backoff_max_s=0.02)
        dispatcher = Dispatcher(engine, settings)
        dispatcher.start()
        try:
            wait_until(lambda: _note(engine).state == "delivered", what="delivered state")
        finally:
            dispatcher.stop()
    assert _note(engine).attempts == 3
    assert len(hook.requests) == 3
