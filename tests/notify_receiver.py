"""A real webhook receiver on loopback that records what it gets and can fail or hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    """One request as the receiver saw it."""

    headers: dict[str, str]
    body: bytes
    status: int
    at: float = 0.0
    """time.monotonic() when the request was read."""


@dataclass
class Receiver:
    """What the test tells the receiver to do, and what it recorded."""

    url: str = ""
    fail_first: int = 0
    always_fail: bool = False
    hang: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    requests: list[Received] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[Received]:
        """Return the requests answered 2xx."""
        with self.lock:
            return [r for r in self.requests if r.status < 300]

    def hanging(self) -> int:
        """Return how many requests the receiver has held unanswered."""
        with self.lock:
            return len(self.held)

    def held_ids(self) -> set[str]:
        """Return the delivery ids of the requests held unanswered."""
        with self.lock:
            return set(self.held)

    def delivery_ids(self) -> list[str]:
        """Return the delivery ids of the requests answered 2xx."""
        return [r.headers["x-naloxnet-delivery"] for r in self.delivered()]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if receiver.hang:
                # Hold the request until released (a receiver that never answers).
                with receiver.lock:
                    receiver.held.append(self.headers.get("X-NaloxNet-Delivery", ""))
                receiver.released.wait(60)
                return
            with receiver.lock:
                seen = len(receiver.requests)
                failing = receiver.always_fail or seen < receiver.fail_first
                status = 500 if failing else 200
                receiver.requests.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body, status,
                             time.monotonic()))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def webhook_receiver(**behaviour: object) -> Iterator[Receiver]:
    """Run a receiver on a free loopback port; yield it with its ``url`` set."""
    receiver = Receiver(**behaviour)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver",
                              daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
