"""PostgreSQL faults: backends killed mid-ingest and mid-write, and an outage window.

The machine's shared PostgreSQL is never restarted: the faults are
``pg_terminate_backend`` on this test's own database (what a restart does to
every connection), and an outage window made by the fault proxy between the
backend and PostgreSQL (connections reset, new ones refused, as while a
server restarts). ``nx-backend ingest`` runs as a child process and the API
in this one, both through the proxy; vends come from a machine publishing
over MQTT, paced by PUBACKs.

Checked: every vend is stored once (no loss, no double; the slot's count
went down once per vend), a visit written with an Idempotency-Key is
recorded once however often it is retried, the API answers 503 problem+json
with Retry-After while the database is away, and everything recovers
without a restart.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from backend.app import create_app
from backend.config import Settings
from backend.db import make_engine, migrate
from simulators.broker import MosquittoBroker
from tests.backend.conftest import bearer, make_token, register
from tests.backend.helpers import publish_vends
from tests.backend.procs import IngestProcess
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES
from tests.faultproxy import FaultProxy, Mode
from tests.faults.rig import throttled, wait_ingest
from tests.http_server import serve_http
from tests.postgres import (
    POSTGRES_ADMIN_URL,
    create_pg_database,
    drop_pg_database,
    postgres_unavailable,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.postgres

MACHINE = "test-001"
STOCK = 9000
VEND_SLOT = 1
VISIT_SLOT = 2
VENDS = 1000
KILLS = 5
"""Times every backend of the database is terminated during one burst of VENDS."""
OUTAGE_S = 5.0
"""How long the database stays away in the outage test."""
DRAIN_S = 240.0
API_APPLICATION = "nx-faults-api"
"""The API's connections carry this application_name, to tell them from ingest's."""
PROBLEM_JSON = "application/problem+json"


@dataclass
class Stack:
    url: str
    """The database as the backend reaches it: through the proxy."""
    direct_url: str
    proxy: FaultProxy
    broker: MosquittoBroker
    ingest: IngestProcess
    api: httpx.Client
    reader: Engine
    """Straight to PostgreSQL, for the test's own reads."""
    published: int = 0

    def publish(self, count: int) -> threading.Thread:
        """Publish ``count`` more vends in a thread (each waits for its PUBACK)."""
        first = self.published + 1
        self.published += count
        thread = threading.Thread(target=publish_vends, daemon=True, args=(
            self.broker, MACHINE, range(first, first + count)),
            kwargs={"password": TEST_MACHINES[MACHINE]})
        thread.start()
        return thread

    def query(self, sql: str, **params: Any) -> Any:
        """One value, read directly (not through the proxy)."""
        with self.reader.connect() as db:
            return db.execute(text(sql), params).scalar_one()

    def stored(self) -> int:
        return int(self.query("SELECT count(*) FROM dispense_event WHERE machine_id = :m",
                              m=MACHINE))

    def check_vends_exactly_once(self) -> None:
        rows = self.stored()
        distinct = int(self.query(
            "SELECT count(DISTINCT seq) FROM dispense_event WHERE machine_id = :m", m=MACHINE))
        top = int(self.query("SELECT max(seq) FROM dispense_event WHERE machine_id = :m",
                             m=MACHINE))
        count = int(self.query("SELECT count FROM slot WHERE machine_id = :m AND slot = :s",
                               m=MACHINE, s=VEND_SLOT))
        assert (rows, distinct, top) == (self.published,) * 3
        assert count == STOCK - self.published  # each vend took one item, once

    def wait_stored(self) -> None:
        wait_until(throttled(lambda: self.stored() >= self.published), timeout=DRAIN_S,
                   what=f"{self.published} vends stored")


def _admin(sql: str, *params: object) -> list[tuple[Any, ...]]:
    import psycopg

    url = make_url(POSTGRES_ADMIN_URL)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                         password=url.password, dbname=url.database, autocommit=True,
                         connect_timeout=5) as conn:
        return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]


def terminate_backends(database: str, *, spare: int = 0, waiting_on_lock: bool = False,
                       application: str | None = None) -> int:
    """Terminate the database's backends but ``spare`` (only those waiting on a lock,
    only ``application``'s when given).

    Return how many were terminated.
    """
    rows = _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
        " AND pid <> pg_backend_pid() AND pid <> %s AND (%s OR wait_event_type = 'Lock')"
        " AND (%s::text IS NULL OR application_name = %s::text)",
        database, spare, not waiting_on_lock, application, application)
    return sum(1 for (done,) in rows if done)


def lock_waiters(database: str, application: str | None = None) -> int:
    """Backends of the database waiting for a row lock (only ``application``'s when given)."""
    rows = _admin("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                  " AND wait_event_type = 'Lock'"
                  " AND (%s::text IS NULL OR application_name = %s::text)",
                  database, application, application)
    return int(rows[0][0])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    direct = create_pg_database(prefix="nx_faults")
    broker = MosquittoBroker({BACKEND_USER: BACKEND_PASSWORD, **TEST_MACHINES})
    try:
        migrate(direct)
        engine = make_engine(direct)
        with Session(engine) as session:
            register(session, MACHINE, count=STOCK, capacity=STOCK, slots=2)
        engine.dispose()
        token = make_token(direct, "outreach", name="van-north")
        server = make_url(direct)
        with FaultProxy(server.host or "127.0.0.1", server.port or 5432) as proxy:
            url = server.set(host="127.0.0.1", port=proxy.port,
                             query={"connect_timeout": "3"}).render_as_string(
                                 hide_password=False)
            broker.start()
            ingest = IngestProcess(url, broker)
            try:
                wait_ingest(ingest)
                # Ingest's jobs may wait on the machine's rows too; the API's own
                # connections are told apart by their application_name.
                api_url = make_url(url).update_query_dict(
                    {"application_name": API_APPLICATION}).render_as_string(hide_password=False)
                app = create_app(Settings(environment="test", database_url=api_url))
                with serve_http(app) as base, httpx.Client(
                        base_url=base, timeout=30, headers=bearer(token)) as api:
                    reader = make_engine(direct)
                    try:
                        yield Stack(url, direct, proxy, broker, ingest, api, reader)
                    finally:
                        reader.dispose()
            finally:
                ingest.terminate()
    finally:
        broker.cleanup()
        drop_pg_database(direct)


def _database(stack: Stack) -> str:
    name = make_url(stack.direct_url).database
    assert name is not None
    return name


@contextmanager
def holding_machine_rows(stack: Stack) -> Iterator[int]:
    """Hold the machine's row and its slots FOR UPDATE, so a writer blocks mid-transaction.

    Yields the holding backend's pid, to be spared.
    """
    import psycopg

    url = make_url(stack.direct_url)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                         password=url.password, dbname=url.database,
                         connect_timeout=5) as conn:
        conn.execute("SELECT id FROM machine WHERE id = %s FOR UPDATE", (MACHINE,))
        conn.execute("SELECT slot FROM slot WHERE machine_id = %s FOR UPDATE", (MACHINE,))
        try:
            yield conn.info.backend_pid
        finally:
            conn.rollback()


def _problem_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["status"] == 503
    assert "Traceback" not in response.text


def _visit(count_after: int) -> dict[str, object]:
    return {"machine_id": MACHINE, "slots": [{"slot": VISIT_SLOT, "count_after": count_after}]}


def _visits(stack: Stack) -> int:
    return int(stack.query("SELECT count(*) FROM restock_visit WHERE machine_id = :m",
                           m=MACHINE))


def test_backends_killed_mid_ingest_lose_and_double_nothing(stack: Stack) -> None:
    database = _database(stack)
    for _ in range(KILLS):
        # Surely mid-transaction: ingest has locked nothing yet and waits on a row we
        # hold when its connection is killed, with a batch of this burst in hand.
        with holding_machine_rows(stack) as holder:
            publisher = stack.publish(VENDS // KILLS)
            wait_until(throttled(lambda: lock_waiters(database) > 0),
                       what="ingest blocked mid-batch")
            # Every connection of the database, as a restart would: the API's idle
            # ones too, and the ingest worker's job coordinator.
            assert terminate_backends(database, spare=holder) >= 1
        publisher.join(DRAIN_S)
    stack.wait_stored()
    stack.check_vends_exactly_once()
    # The API never restarted: its pools replace the killed connections.
    wait_until(throttled(lambda: _answers(stack, f"/api/v1/machines/{MACHINE}")),
               what="the API serving again")


def _answers(stack: Stack, path: str) -> bool:
    """Whether GET ``path`` answers 200 (a timeout on a loaded machine is a no, for now)."""
    try:
        return stack.api.get(path).status_code == 200
    except httpx.TimeoutException:
        return False


def test_backend_killed_mid_api_write_is_a_503_and_the_retry_counts_once(stack: Stack) -> None:
    database = _database(stack)
    key = {"Idempotency-Key": f"visit-{uuid.uuid4().hex}"}
    answers: list[httpx.Response | httpx.HTTPError] = []

    def post_visit() -> None:
        try:
            answers.append(stack.api.post("/api/v1/visits", json=_visit(40), headers=key))
        except httpx.HTTPError as error:  # kept, so the assertion below names it
            answers.append(error)

    with holding_machine_rows(stack) as holder:
        poster = threading.Thread(target=post_visit, daemon=True)
        poster.start()
        wait_until(throttled(lambda: lock_waiters(database, API_APPLICATION) > 0),
                   what="the visit blocked mid-transaction")
        assert terminate_backends(database, spare=holder, waiting_on_lock=True,
                                  application=API_APPLICATION) == 1
        poster.join(30)
    [killed] = answers
    assert isinstance(killed, httpx.Response), repr(killed)
    _problem_503(killed)
    assert _visits(stack) == 0  # rolled back
    done = stack.api.post("/api/v1/visits", json=_visit(40), headers=key)
    assert done.status_code == 201, done.text
    again = stack.api.post("/api/v1/visits", json=_visit(40), headers=key)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _visits(stack) == 1
    slot = stack.api.get(f"/api/v1/machines/{MACHINE}").json()["slots"]
    assert {s["slot"]: s["count"] for s in slot}[VISIT_SLOT] == 40


def test_outage_window_answers_503_and_everything_recovers_without_a_restart(
    stack: Stack
) -> None:
    visits_before = _visits(stack)
    key = {"Idempotency-Key": f"visit-{uuid.uuid4().hex}"}
    publisher = stack.publish(VENDS)
    before = stack.stored()
    wait_until(throttled(lambda: stack.stored() > before), what="ingest under way")
    # PostgreSQL "restarts": every connection reset, new ones refused, for OUTAGE_S.
    stack.proxy.set_mode(Mode.REFUSE)
    stack.proxy.reset_all()
    went_down = time.monotonic()
    outage_answers = [
        stack.api.get(f"/api/v1/machines/{MACHINE}"),
        stack.api.get("/api/v1/alerts"),
        stack.api.post("/api/v1/visits", json=_visit(30), headers=key),
    ]
    for answer in outage_answers:
        _problem_503(answer)
    frozen = stack.stored()
    wait_until(lambda: time.monotonic() >= went_down + OUTAGE_S, timeout=OUTAGE_S + 5,
               what="the end of the outage")
    assert stack.stored() == frozen  # nothing reached the database meanwhile
    stack.proxy.heal()
    healed = time.monotonic()
    wait_until(throttled(lambda: _answers(stack, f"/api/v1/machines/{MACHINE}")),
               what="the API serving again")
    api_back_s = time.monotonic() - healed
    retried = stack.api.post("/api/v1/visits", json=_visit(30), headers=key)
    assert retried.status_code == 201, retried.text
    publisher.join(DRAIN_S)
    stack.wait_stored()
    ingest_back_s = time.monotonic() - healed
    stack.check_vends_exactly_once()
    assert _visits(stack) == visits_before + 1
    print({"outage_s": OUTAGE_S, "api_back_s": round(api_back_s, 2),
           "ingest_caught_up_s": round(ingest_back_s, 2)})
