"""The fleet snapshot over real HTTP on SQLite and PostgreSQL: ETag and 304, gzip, ``since``
deltas with removals, cursors shared by replicas, and the thread that keeps it current."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, func, inspect, select, text, update
from sqlmodel import Session

from backend.api import snapshot as snapshot_module
from backend.api.snapshot import FleetSnapshot
from backend.app import create_app
from backend.config import Settings
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import FleetChange, Machine, utcnow
from tests.backend.conftest import AuthHeaders, register
from tests.backend.helpers import events_topic, vend
from tests.http_server import serve_http
from tests.waiting import wait_until

MACHINES = "/api/v1/machines"


@pytest.fixture
def base_url(migrated_url: str) -> Iterator[str]:
    settings = Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)
    with serve_http(create_app(settings)) as url:
        yield url


def _vend(engine: Engine, machine_id: str, seq: int) -> None:
    with Session(engine) as session:
        message = Message(events_topic(machine_id), vend(machine_id, seq).to_bytes(), utcnow())
        BatchWriter(default_low_threshold=2).write(session, [message], utcnow())
        session.commit()


def _deactivate(engine: Engine, machine_id: str) -> None:
    with engine.begin() as connection:
        connection.execute(update(Machine).where(Machine.id == machine_id).values(active=False))


def _fleet(engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "test-001", area="north", count=9)
        register(session, "test-002", area="north", count=9)
        register(session, "test-003", area="south", count=9)


def test_etag_304_gzip_and_since(base_url: str, engine: Engine, auth_headers: AuthHeaders
                                 ) -> None:
    _fleet(engine)
    with httpx.Client(base_url=base_url, headers=auth_headers("outreach"), timeout=30) as http:
        first = http.get(MACHINES, params={"limit": 100})
        assert first.status_code == 200
        assert first.headers["content-encoding"] == "gzip"  # httpx asks for it and unpacks it
        body = first.json()
        assert (body["count"], body["full"], body["removed"]) == (3, True, [])
        assert [m["id"] for m in body["data"]] == ["test-001", "test-002", "test-003"]
        assert body["data"][0]["tags"] == []
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        assert http.get(MACHINES, params={"limit": 100},
                        headers={"If-None-Match": etag}).status_code == 304
        # Nothing changed: an empty delta, and 304 with the ETag.
        nothing = http.get(MACHINES, params={"since": body["cursor"]}).json()
        assert (nothing["data"], nothing["removed"], nothing["full"]) == ([], [], False)
        assert http.get(MACHINES, params={"since": body["cursor"]},
                        headers={"If-None-Match": etag}).status_code == 304

        _vend(engine, "test-002", 1)
        changed = http.get(MACHINES, params={"since": body["cursor"]},
                           headers={"If-None-Match": etag})
        assert changed.status_code == 200
        delta = changed.json()
        assert [m["id"] for m in delta["data"]] == ["test-002"]
        assert delta["data"][0]["slots"][0]["count"] == 8
        assert (delta["removed"], delta["count"]) == ([], 3)
        assert changed.headers["etag"] != etag

        _deactivate(engine, "test-001")
        gone = http.get(MACHINES, params={"since": delta["cursor"]}).json()
        assert (gone["data"], gone["removed"], gone["count"]) == ([], ["test-001"], 2)
        # Every change since the first cursor, at once.
        both = http.get(MACHINES, params={"since": body["cursor"]}).json()
        assert ([m["id"] for m in both["data"]], both["removed"]) == (["test-002"], ["test-001"])
        # A cursor from before anything this process kept gets the whole listing.
        old = http.get(MACHINES, params={"since": "0:0:", "limit": 10}).json()
        assert (old["full"], old["count"], len(old["data"])) == (True, 2, 2)
        assert http.get(MACHINES, params={"since": "7:3:"}).status_code == 422


def test_area_limited_callers_see_only_their_areas_leave(
        base_url: str, engine: Engine, auth_headers: AuthHeaders) -> None:
    _fleet(engine)
    with httpx.Client(base_url=base_url, headers=auth_headers("outreach", areas=["south"]),
                      timeout=30) as http:
        body = http.get(MACHINES).json()
        assert [m["id"] for m in body["data"]] == ["test-003"]
        _deactivate(engine, "test-001")  # not theirs: they are not told of it
        _vend(engine, "test-003", 1)
        delta = http.get(MACHINES, params={"since": body["cursor"]}).json()
        assert ([m["id"] for m in delta["data"]], delta["removed"]) == (["test-003"], [])
        with engine.begin() as connection:  # moved out of their area: it leaves their view
            connection.execute(update(Machine).where(Machine.id == "test-003")
                               .values(area="north"))
        moved = http.get(MACHINES, params={"since": delta["cursor"]}).json()
        assert (moved["data"], moved["removed"], moved["count"]) == ([], ["test-003"], 0)


def test_replicas_share_cursors_and_etags(migrated_url: str, engine: Engine,
                                          auth_headers: AuthHeaders) -> None:
    _fleet(engine)
    settings = Settings(environment="test", database_url=migrated_url, api_snapshot_cache_s=0)
    headers = auth_headers("health")
    with serve_http(create_app(settings)) as one, serve_http(create_app(settings)) as two:
        first = httpx.get(f"{one}{MACHINES}", headers=headers, timeout=30)
        again = httpx.get(f"{two}{MACHINES}", headers=headers, timeout=30)
        assert first.headers["etag"] == again.headers["etag"]
        _vend(engine, "test-003", 1)
        delta = httpx.get(f"{two}{MACHINES}", params={"since": first.json()["cursor"]},
                          headers=headers, timeout=30).json()
        assert ([m["id"] for m in delta["data"]], delta["full"]) == (["test-003"], False)
        # The first replica has not read since; a cursor from further on makes it catch up.
        back = httpx.get(f"{one}{MACHINES}", params={"since": delta["cursor"]},
                         headers=headers, timeout=30).json()
        assert (back["data"], back["full"]) == ([], False)


def test_tags_are_shown_to_fleet_readers(base_url: str, engine: Engine,
                                         auth_headers: AuthHeaders) -> None:
    _fleet(engine)
    with httpx.Client(base_url=base_url, timeout=30) as http:
        cursor = http.get(MACHINES, headers=auth_headers("health")).json()["cursor"]
        assert http.put(f"{MACHINES}/test-001/tags", headers=auth_headers("admin"),
                        json={"tags": ["pilot"]}).status_code == 200
        delta = http.get(MACHINES, params={"since": cursor}, headers=auth_headers("health"))
        assert [(m["id"], m["tags"]) for m in delta.json()["data"]] == [("test-001", ["pilot"])]


def test_the_thread_keeps_it_current_and_prunes_the_log(
        migrated_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_module, "LOG_RETENTION_S", 0.4)
    monkeypatch.setattr(snapshot_module, "PRUNE_EVERY_S", 0.1)
    _fleet(engine)
    fleet = FleetSnapshot(engine, engine, default_threshold=2, max_age_s=0.05)
    fleet.start()
    try:
        first = fleet.page(frozenset(), 100, 0)
        _vend(engine, "test-001", 1)
        wait_until(lambda: fleet.page(frozenset(), 100, 0).etag != first.etag, timeout=20,
                   what="the thread to read the vend")

        def log_rows() -> int:
            with engine.connect() as connection:
                return int(connection.execute(select(func.count()).select_from(FleetChange))
                           .scalar_one())

        wait_until(lambda: log_rows() == 0, timeout=20, what="the change log to be pruned")
        _vend(engine, "test-002", 1)  # after a prune the log still orders new changes

        def counts() -> list[int]:
            body = json.loads(fleet.page(frozenset(), 100, 0).identity)
            return [m["slots"][0]["count"] for m in body["data"]]

        wait_until(lambda: counts() == [8, 8, 9], timeout=20, what="the second vend")
    finally:
        fleet.stop()


def test_every_write_to_what_the_snapshot_shows_is_logged(migrated_url: str, engine: Engine
                                                          ) -> None:
    """Triggers fill the log; a later SQLite migration that rebuilds a table (batch mode)
    drops its triggers, and this test says so."""
    names = ({"fleet_change_machine", "fleet_change_slot", "fleet_change_alert"}
             if engine.dialect.name == "postgresql" else
             {f"fleet_change_{t}_{op}" for t in ("machine", "slot", "alert")
              for op in ("insert", "update", "delete")} | {"fleet_change_slot_move",
                                                            "fleet_change_alert_move"})
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            found = {r[0] for r in connection.execute(
                text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))}
        else:
            found = {r[0] for r in connection.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))}
    assert names <= found
    assert "fleet_change" in inspect(engine).get_table_names()
