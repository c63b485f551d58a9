"""Database engines, Alembic migrations, and the schema check the services run at start."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another's lock before giving up."""
PG_CONNECT_TIMEOUT_S = 10
"""libpq waits for ever for a server that does not answer (a partition, not a refusal);
a new connection gives up after this instead. ``?connect_timeout=N`` in the URL wins."""
PG_DEAD_LINK_S = 20.0
"""How long an open PostgreSQL connection may go unanswered before it counts as dead.

A partition (a switch dies, a firewall forgets the connection's state) leaves
the socket open with nothing coming back: libpq would wait on a query for the
kernel's ~15 min of retransmissions (``tcp_retries2``) and on an idle pooled
connection for ever. ``NX_DATABASE_DEAD_LINK_S`` is the default for the services."""
KEEPALIVE_PROBES = 3


def dead_link_timers(dead_link_s: float) -> tuple[int, int, int]:
    """(keepalive idle s, probe interval s, user timeout ms) that end a link silent ``dead_link_s``.

    ``tcp_user_timeout`` ends a connection whose sent bytes (a query, a COMMIT)
    stay unacknowledged that long; keepalives probe an idle one (or one waiting on
    a slow query: a live peer acknowledges probes, so a long query is never cut),
    and with ``tcp_user_timeout`` set Linux declares it dead at the first probe
    after that long of silence: at most ``dead_link_s`` plus one probe interval.
    """
    idle = max(1, round(dead_link_s / 2))
    interval = max(1, round(dead_link_s / (2 * KEEPALIVE_PROBES)))
    return idle, interval, max(1, round(dead_link_s * 1000))


def dead_link_args(dead_link_s: float) -> dict[str, int | str]:
    """libpq connection parameters for both ends of a connection (``dead_link_timers``).

    The client's own sockets get keepalives and ``tcp_user_timeout``; ``options``
    asks the server to do the same for its end (user-settable settings), so that a
    backend cut off mid-transaction ends and rolls back, releasing its row locks,
    instead of holding them for the server's default two hours of keepalive.
    """
    idle, interval, user_timeout_ms = dead_link_timers(dead_link_s)
    return {
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": interval,
        "keepalives_count": KEEPALIVE_PROBES,
        "tcp_user_timeout": user_timeout_ms,
        "options": (f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval}"
                    f" -c tcp_keepalives_count={KEEPALIVE_PROBES}"
                    f" -c tcp_user_timeout={user_timeout_ms}"),
    }


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the schema this code expects."""


def _prepare_sqlite(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, *, immediate: bool = False,
                dead_link_s: float = PG_DEAD_LINK_S) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout.

    A PostgreSQL engine's connections give up on a silent server after about
    ``dead_link_s`` (``dead_link_args``); a parameter named in the URL wins.

    ``immediate`` makes every SQLite transaction ``BEGIN IMMEDIATE``: a writer
    that reads first (as ingest does) then cannot fail to upgrade its lock
    when another process wrote in between.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # pool_pre_ping: a connection killed while idle in the pool (a restart,
        # pg_terminate_backend) is replaced at checkout, so nothing needs a restart.
        defaults: dict[str, int | str] = {"connect_timeout": PG_CONNECT_TIMEOUT_S,
                                    **dead_link_args(dead_link_s)}
        connect_args = {k: v for k, v in defaults.items() if k not in parsed.query}
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    _prepare_sqlite(url)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def alembic_config(url: str) -> Config:
    """Return an Alembic config pointing at the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the newest)."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
    log.info("database %s is at %s", make_url(url).render_as_string(), revision)


def head_revision() -> str:
    """Return the newest migration revision the code carries."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Raise ``SchemaOutOfDateError`` unless the database is at the newest migration."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        where = make_url(str(engine.url)).render_as_string()
        raise SchemaOutOfDateError(
            f"database {where} is at schema {current or '(none)'} but this code needs {head}: "
            "run `nx-backend migrate` first"
        )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
