"""The console's client polls the real backend's fleet snapshot: the whole fleet once, then
only what changed (``since``), 304 when nothing did, and removals applied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session

from backend.app import create_app
from backend.auth.tokens import create_token
from backend.config import Settings
from backend.db import make_engine, migrate
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import Machine, utcnow
from console.client import ApiClient
from tests.backend.conftest import register
from tests.backend.helpers import events_topic, vend
from tests.http_server import serve_http


class Recording(httpx.HTTPTransport):
    """Keeps each request's query and the status it got."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.seen.append((request.url.query.decode(), response.status_code))
        return response


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'nx.db'}"
    migrate(url)
    engine = make_engine(url, immediate=True)
    with Session(engine) as session:
        for n in range(1, 6):
            register(session, f"test-00{n}", count=9)
    engine.dispose()
    settings = Settings(environment="test", database_url=url, api_snapshot_cache_s=0)
    with serve_http(create_app(settings)) as base:
        yield base, url


def test_the_client_asks_only_for_changes(served: tuple[str, str]) -> None:
    base, url = served
    engine = make_engine(url, immediate=True)
    transport = Recording()
    try:
        with ApiClient(base, token=_token(url), page_size=2, timeout_s=30,
                       transport=transport) as client:
            assert [m.id for m in client.all_machines()] == [f"test-00{n}" for n in range(1, 6)]
            assert len(transport.seen) == 3  # three pages the first time
            # The pages' ETags name pages: the first ask for changes gets the state's.
            for status in (200, 304):
                assert [m.id for m in client.all_machines()] == [
                    f"test-00{n}" for n in range(1, 6)]
                assert transport.seen[-1][1] == status
                assert "since=" in transport.seen[-1][0]
            with Session(engine) as session:
                message = Message(events_topic("test-003"), vend("test-003", 1).to_bytes(),
                                  utcnow())
                BatchWriter(default_low_threshold=2).write(session, [message], utcnow())
                session.commit()
            with engine.begin() as connection:
                connection.execute(update(Machine).where(Machine.id == "test-005")
                                   .values(active=False))
            machines = {m.id: m for m in client.all_machines()}
            assert transport.seen[-1][1] == 200
            assert sorted(machines) == [f"test-00{n}" for n in range(1, 5)]
            assert machines["test-003"].slots[0].count == 8
            assert len(transport.seen) == 6  # one request for the changes, no paging
    finally:
        engine.dispose()


def _token(url: str) -> str:
    engine = make_engine(url, immediate=True)
    try:
        with Session(engine) as session:
            return create_token(session, name="console-2", role="outreach")
    finally:
        engine.dispose()
