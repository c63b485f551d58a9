"""Where the demo's notifications land: a webhook inbox and an SMTP sink, both on loopback.

The inbox checks each webhook's signature, drops repeats by delivery id (as a
real receiver should) and shows what arrived at ``GET /``; the sink writes each
e-mail's headers to a log file. Nothing here is for production.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import deque
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from backend.notify.signing import DELIVERY_HEADER, SIGNATURE_HEADER, verify

log = logging.getLogger(__name__)

KEEP = 200
"""Notifications the inbox shows (the newest)."""


class WebhookInbox:
    """Receive signed webhooks on a free loopback port; log and list them."""

    def __init__(self, log_file: Path, secret: str | None = None) -> None:
        self.secret = secret or secrets.token_urlsafe(24)
        self.log_file = log_file
        self.received: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.seen: set[str] = set()
        self.repeats = 0
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="demo-webhooks", daemon=True)

    @property
    def url(self) -> str:
        """Return the URL webhooks are posted to (and the list is read from)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def take(self, headers: dict[str, str], body: bytes) -> int:
        """Record one webhook; return the HTTP status to answer."""
        signature = headers.get(SIGNATURE_HEADER.lower(), "")
        if not verify(self.secret, signature, body, now=time.time()):
            log.warning("demo inbox: a webhook with a bad signature was refused")
            return 401
        delivery = headers.get(DELIVERY_HEADER.lower(), "")
        with self.lock:
            if delivery in self.seen:
                self.repeats += 1
                return 200  # a retry of one we have: acknowledge, keep one
            self.seen.add(delivery)
            payload = json.loads(body)
            alert = payload.get("alert") or {}
            entry = {"delivery_id": delivery, "event": payload.get("event"),
                     "type": alert.get("type"), "severity": alert.get("severity"),
                     "subject": alert.get("subject"),
                     "message": alert.get("message") or payload.get("message")}
            self.received.append(entry)
            with self.log_file.open("a") as out:
                out.write(json.dumps(entry) + "\n")
        return 200

    def listing(self) -> bytes:
        """Return the newest notifications, newest first, as JSON."""
        with self.lock:
            items = list(reversed(self.received))
            body = {"received": len(self.seen), "repeats_dropped": self.repeats,
                    "newest": items}
        return json.dumps(body, indent=2).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    status = inbox.take({k.lower(): v for k, v in self.headers.items()}, body)
                except ValueError:
                    status = 400
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                body = inbox.listing()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the log file is the record

        return Handler


class MailSink:
    """An SMTP server on a free loopback port that logs each message instead of sending it."""

    def __init__(self, log_file: Path) -> None:
        from aiosmtpd.controller import Controller

        from simulators.broker import free_port

        self.log_file = log_file
        self.count = 0
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        """Log the message's sender, recipients and subject (aiosmtpd's hook)."""
        mail = message_from_bytes(envelope.content, policy=default_policy)
        line = json.dumps({"to": list(envelope.rcpt_tos), "subject": str(mail["Subject"]),
                           "delivery_id": str(mail[DELIVERY_HEADER])})
        with self.log_file.open("a") as out:
            out.write(line + "\n")
        self.count += 1
        return "250 OK"

    def start(self) -> None:
        """Start accepting mail."""
        self._controller.start()

    def stop(self) -> None:
        """Stop accepting mail."""
        self._controller.stop()
