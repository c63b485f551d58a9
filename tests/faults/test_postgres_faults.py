"""PostgreSQL faults: backends killed mid-ingest and mid-write, and an outage window.

The machine's shared PostgreSQL is never restarted: the faults are
``pg_terminate_backend`` on this test's own database (what a restart does to
every connection), and an outage window made by the fault proxy between the
backend and PostgreSQL (connections reset, new ones refused, as while a
server restarts). ``nx-backend ingest`` runs as a child process and the API
in this one, both through the proxy; vends come from a machine publishing
over MQTT, paced by PUBACKs. Where network namespaces can be made, the proxy
listens across a veth pair (tests/netpartition.py) whose cut is a partition
the kernel sees: only TCP keepalives and ``tcp_user_timeout``
(NX_DATABASE_DEAD_LINK_S) can end the connections it leaves open.

Checked: every vend is stored once (no loss, no double; the slot's count
went down once per vend), a visit written with an Idempotency-Key is
recorded once however often it is retried, the API answers 503 problem+json
with Retry-After while the database is away (within the dead-link bound in
a partition), and everything recovers without a restart.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from backend.app import create_app
from backend.config import Settings
from backend.db import dead_link_timers, make_engine, migrate
from simulators.broker import MosquittoBroker
from tests.backend.conftest import bearer, make_token, register
from tests.backend.helpers import publish_vends
from tests.backend.procs import IngestProcess
from tests.conftest import BACKEND_PASSWORD, BACKEND_USER, TEST_MACHINES
from tests.faultproxy import FaultProxy, Mode
from tests.faults.rig import save_figures, throttled, wait_ingest
from tests.http_server import serve_http
from tests.netpartition import VethPartition, unavailable
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
DEAD_LINK_S = 3.0
"""NX_DATABASE_DEAD_LINK_S for the API and ingest: short, so the partition test stays short."""
CONNECT_TIMEOUT_S = 3
PARTITION_S = 20.0
"""How long the network between the backend and PostgreSQL stays partitioned."""
SLACK_S = 3.0
"""What a loaded 2-core machine may add to a bound (scheduling, the test's own polls)."""


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
    partition: VethPartition | None
    """The network between the backend and the proxy, to cut; None where it cannot be made."""
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


def _as_the_server(sock: socket.socket) -> None:
    """Give the proxy's end of a connection the timers the backend asks PostgreSQL for.

    The proxy's accepted socket faces the partition where the server's would:
    without them it would never notice a client cut off mid-transaction, and the
    server's backend would keep that transaction's row locks.
    """
    idle, interval, user_timeout_ms = dead_link_timers(DEAD_LINK_S)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms)


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
        with ExitStack() as resources:
            # The backend reaches the proxy across a veth pair that can be cut, where
            # namespaces can be made; over loopback elsewhere (no partition test then).
            partition = (resources.enter_context(VethPartition())
                         if unavailable() is None else None)
            proxy = resources.enter_context(FaultProxy(
                server.host or "127.0.0.1", server.port or 5432,
                listen_sock=partition.listen() if partition is not None else None,
                accepted=_as_the_server))
            url = server.set(host=partition.address if partition else "127.0.0.1",
                             port=proxy.port,
                             query={"connect_timeout": str(CONNECT_TIMEOUT_S)}
                             ).render_as_string(hide_password=False)
            broker.start()
            ingest = IngestProcess(url, broker, extra_env={
                "NX_DATABASE_DEAD_LINK_S": str(DEAD_LINK_S)})
            try:
                wait_ingest(ingest)
                # Ingest's jobs may wait on the machine's rows too; the API's own
                # connections are told apart by their application_name.
                api_url = make_url(url).update_query_dict(
                    {"application_name": API_APPLICATION}).render_as_string(hide_password=False)
                app = create_app(Settings(environment="test", database_url=api_url,
                                          database_dead_link_s=DEAD_LINK_S))
                with serve_http(app) as base, httpx.Client(
                        base_url=base, timeout=30, headers=bearer(token)) as api:
                    reader = make_engine(direct)
                    try:
                        yield Stack(url, direct, proxy, broker, ingest, api, reader, partition)
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


def _watch_gone(partition: VethPartition, links: dict[str, set[int]], gone_at: dict[str, float],
                deadline: float) -> None:
    """Note when each group of connections (local ports) has left ESTABLISHED, until deadline."""
    while len(gone_at) < len(links) and time.monotonic() < deadline:
        open_now = set(partition.established())
        for name, ports in links.items():
            if name not in gone_at and not ports & open_now:
                gone_at[name] = time.monotonic()
        time.sleep(0.1)  # a poll of the kernel's table, not a wait for an outcome


def test_partition_mid_ingest_is_noticed_within_the_dead_link_bound_and_recovers(
    stack: Stack
) -> None:
    """A black hole between the backend and PostgreSQL: connections stay open, nothing passes.

    Only the kernel's timers can end such a connection (NX_DATABASE_DEAD_LINK_S):
    ingest's in-flight commit fails and is retried, the API answers 503 instead of
    hanging, and both carry on by themselves once the network is back.
    """
    partition = stack.partition
    if partition is None:
        pytest.skip(f"no network partition can be made here: {unavailable()}")
    database = _database(stack)
    visits_before = _visits(stack)
    key = {"Idempotency-Key": f"visit-{uuid.uuid4().hex}"}
    assert stack.api.get(f"/api/v1/machines/{MACHINE}").status_code == 200  # pooled
    ours = os.getpid()
    with holding_machine_rows(stack):
        # Surely mid-transaction: ingest waits on a row we hold with a batch of the
        # burst in hand, its query sent and acknowledged, so only a keepalive can
        # tell the silence of a partition from that of a lock.
        publisher = stack.publish(VENDS)
        wait_until(throttled(lambda: lock_waiters(database) > 0),
                   what="ingest blocked mid-batch")
        open_at_cut = partition.established()
        stored_at_cut = stack.stored()
        partition.cut()
        cut = time.monotonic()
    # Released: ingest's backend goes on and answers into the partition.
    ingest_links = {port for port, pid in open_at_cut.items() if pid != ours}
    api_links = {port for port, pid in open_at_cut.items() if pid == ours}
    assert ingest_links, open_at_cut
    assert api_links, open_at_cut
    assert stored_at_cut < stack.published
    # Watched beside the API's requests below, which take seconds of their own.
    gone_at: dict[str, float] = {}
    watcher = threading.Thread(target=_watch_gone, daemon=True, args=(
        partition, {"ingest": ingest_links, "api": api_links}, gone_at, cut + PARTITION_S))
    watcher.start()

    # The API: a read and a write, each answered 503 once the pooled connection is
    # found dead (DEAD_LINK_S) and a new one is not made (CONNECT_TIMEOUT_S).
    api_bound_s = DEAD_LINK_S + CONNECT_TIMEOUT_S + SLACK_S
    answer_s: list[float] = []
    for method, path, body in (("GET", f"/api/v1/machines/{MACHINE}", None),
                               ("POST", "/api/v1/visits", _visit(20))):
        asked = time.monotonic()
        _problem_503(stack.api.request(method, path, json=body, headers=key))
        answer_s.append(time.monotonic() - asked)
    assert answer_s[0] <= api_bound_s, answer_s

    # Ingest: every connection it had open (the writer's mid-commit, idle pooled ones,
    # the job coordinator's) is given up by the kernel within the bound.
    _, interval, _ = dead_link_timers(DEAD_LINK_S)
    ingest_bound_s = DEAD_LINK_S + interval + SLACK_S
    watcher.join(PARTITION_S + 5)
    assert "ingest" in gone_at, f"ingest kept connections {ingest_links} through the partition"
    ingest_noticed_s = gone_at["ingest"] - cut
    frozen = stack.stored()
    wait_until(lambda: time.monotonic() >= cut + PARTITION_S, timeout=PARTITION_S + 5,
               what="the end of the partition")
    assert stack.stored() == frozen  # nothing reached the database meanwhile
    assert "api" in gone_at, f"the API kept connections {api_links} through the partition"
    partition.heal()
    healed = time.monotonic()
    wait_until(throttled(lambda: _answers(stack, f"/api/v1/machines/{MACHINE}")),
               what="the API serving again")
    api_back_s = time.monotonic() - healed
    retried = stack.api.post("/api/v1/visits", json=_visit(20), headers=key)
    assert retried.status_code == 201, retried.text
    publisher.join(DRAIN_S)
    stack.wait_stored()
    ingest_back_s = time.monotonic() - healed
    stack.check_vends_exactly_once()
    assert _visits(stack) == visits_before + 1
    save_figures("postgres-partition", {
        "partition_s": PARTITION_S, "dead_link_s": DEAD_LINK_S,
        "connect_timeout_s": CONNECT_TIMEOUT_S,
        "ingest_connections_at_cut": len(ingest_links), "api_connections_at_cut": len(api_links),
        "ingest_noticed_s": round(ingest_noticed_s, 2),
        "api_first_503_s": round(answer_s[0], 2), "api_write_503_s": round(answer_s[1], 2),
        "api_all_noticed_s": round(gone_at["api"] - cut, 2),
        "api_back_s": round(api_back_s, 2), "ingest_caught_up_s": round(ingest_back_s, 2),
        "vends": stack.published, "stored_at_cut": stored_at_cut,
    })
    assert ingest_noticed_s <= ingest_bound_s, ingest_noticed_s
