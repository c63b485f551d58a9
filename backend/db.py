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


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the schema this code expects."""


def _prepare_sqlite(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, *, immediate: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout.

    ``immediate`` makes every SQLite transaction ``BEGIN IMMEDIATE``: a writer
    that reads first (as ingest does) then cannot fail to upgrade its lock
    when another process wrote in between.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # pool_pre_ping: a connection killed while idle in the pool (a restart,
        # pg_terminate_backend) is replaced at checkout, so nothing needs a restart.
        connect_args = ({} if "connect_timeout" in parsed.query
                        else {"connect_timeout": PG_CONNECT_TIMEOUT_S})
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
