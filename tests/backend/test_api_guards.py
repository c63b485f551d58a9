"""The API's edge: bodies are capped unread, writes take only JSON and only from allowed origins."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from sqlmodel import Session, select

from backend.app import create_app
from backend.config import Settings
from backend.models import Alert, AlertStatus
from tests.backend.conftest import AuthHeaders, register
from tests.backend.helpers import fresh
from tests.http_server import serve_http

LIMIT = 4096
TEN_MB = 10 * 1024 * 1024
CONSOLE = "https://console.example.org"


@contextmanager
def _serve(migrated_url: str, **overrides: object) -> Iterator[str]:
    values: dict[str, object] = {"environment": "test", "database_url": migrated_url,
                                 "api_snapshot_cache_s": 0, "api_max_body_bytes": LIMIT,
                                 "api_allowed_origins": [CONSOLE]}
    values.update(overrides)
    with serve_http(create_app(Settings.model_validate(values))) as base_url:
        yield base_url


@pytest.fixture
def base_url(migrated_url: str) -> Iterator[str]:
    with _serve(migrated_url) as url:
        yield url


@pytest.fixture
def client(base_url: str, auth_headers: AuthHeaders) -> Iterator[httpx.Client]:
    """An admin's client."""
    with httpx.Client(base_url=base_url, timeout=10, headers=auth_headers("admin")) as http:
        yield http


def _raw_exchange(base_url: str, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a request head and some body over a socket, never finishing it; return the reply.

    The server must answer while the client still owes it body bytes: a server
    that waited for the whole body would time out here.
    """
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        reply = b""
        while b"\r\n\r\n" not in reply or not _complete(reply):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def _complete(reply: bytes) -> bool:
    head, _, body = reply.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _status_and_body(reply: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/problem+json" in head.lower()
    return status, json.loads(body)


def _head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


def test_declared_oversized_body_is_refused_before_it_is_read(base_url: str) -> None:
    head = _head("POST", "/api/v1/machines/test-001/restock-visits",
                 "Content-Type: application/json", f"Content-Length: {TEN_MB}")
    reply = _raw_exchange(base_url, head, [b"{" + b" " * 1023])  # 1 KiB of the 10 MB
    status, body = _status_and_body(reply)
    assert status == 413
    assert body["status"] == 413
    assert str(LIMIT) in str(body["detail"])


def test_chunked_body_is_refused_once_past_the_limit(base_url: str) -> None:
    head = _head("POST", "/api/v1/machines/test-001/restock-visits",
                 "Content-Type: application/json", "Transfer-Encoding: chunked")
    chunk = b"%x\r\n%s\r\n" % (1024, b" " * 1024)
    # Past the limit by one chunk, and the terminating chunk is never sent.
    reply = _raw_exchange(base_url, head, [chunk] * (LIMIT // 1024 + 1))
    status, _ = _status_and_body(reply)
    assert status == 413


def test_chunked_body_within_the_limit_is_served(client: httpx.Client, session: Session) -> None:
    register(session, "test-001", count=1)
    payload = json.dumps({"counts": {"1": 5}}).encode()
    response = client.post("/api/v1/machines/test-001/restock-visits",
                           content=iter([payload[:5], payload[5:]]),
                           headers={"Content-Type": "application/json"})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 201, response.text


def test_the_cap_is_a_setting(migrated_url: str, session: Session,
                              auth_headers: AuthHeaders) -> None:
    register(session, "test-001", count=1)
    body = {"counts": {"1": 5}}
    with _serve(migrated_url, api_max_body_bytes=1024) as url, \
            httpx.Client(base_url=url, headers=auth_headers("admin")) as http:
        padded = json.dumps(body).encode() + b" " * 1024
        refused = http.post("/api/v1/machines/test-001/restock-visits", content=padded,
                            headers={"Content-Type": "application/json"})
        assert refused.status_code == 413
        assert refused.headers["content-type"] == "application/problem+json"
        assert http.post("/api/v1/machines/test-001/restock-visits", json=body).status_code == 201


def _open_alert(session: Session) -> int:
    register(session, "test-001", count=1)  # below the threshold: a low-stock alert
    alert_id = session.exec(select(Alert.id)).one()
    assert alert_id is not None
    return alert_id


def _status_of(session: Session, alert_id: int) -> str:
    return fresh(session).exec(select(Alert.status).where(Alert.id == alert_id)).one()


def test_foreign_form_post_cannot_resolve_an_alert(client: httpx.Client, session: Session) -> None:
    alert_id = _open_alert(session)
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"}
    response = client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=form)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "evil.example" in response.json()["detail"]
    for origin in ("null", "https://console.example.org.evil.example", "http://console.example.org"):
        assert client.post(f"/api/v1/alerts/{alert_id}/resolve",
                           headers={"Origin": origin}).status_code == 403
    assert _status_of(session, alert_id) == AlertStatus.OPEN


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain",
])
def test_writes_take_only_json(client: httpx.Client, session: Session, content_type: str) -> None:
    alert_id = _open_alert(session)
    response = client.post(f"/api/v1/alerts/{alert_id}/resolve", content=b'{}',
                           headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert _status_of(session, alert_id) == AlertStatus.OPEN
    untyped = client.post(f"/api/v1/alerts/{alert_id}/resolve", content=b'{}')
    assert untyped.status_code == 415
    assert _status_of(session, alert_id) == AlertStatus.OPEN


def test_allowed_and_own_origins_and_clients_without_origin_may_write(
    client: httpx.Client, session: Session, base_url: str
) -> None:
    alert_id = _open_alert(session)
    path = f"/api/v1/alerts/{alert_id}/acknowledge"
    assert client.post(path, json={}, headers={"Origin": CONSOLE}).status_code == 200
    assert client.post(path, json={},
                       headers={"Origin": "HTTPS://Console.Example.org:443/"}).status_code == 200
    assert client.post(path, json={}, headers={"Origin": base_url}).status_code == 200
    # A script or the console's server side sends no Origin; curl -X POST sends no body.
    assert client.post(path).status_code == 200
    assert client.post(path, json={}).status_code == 200
    # Reads are not writes: no origin check (CORS decides what a page may read).
    read = client.get("/api/v1/alerts", headers={"Origin": "https://evil.example"})
    assert read.status_code == 200
