"""Database fixtures: every database test runs on SQLite and, where one answers, PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from backend import crud
from backend.auth.tokens import create_token
from backend.config import Settings
from backend.db import make_engine, migrate
from simulators.broker import MosquittoBroker
from tests.conftest import BACKEND_PASSWORD
from tests.postgres import (
    POSTGRES_ADMIN_URL,
    create_pg_database,
    drop_pg_database,
    postgres_unavailable,
    recreate_from_template,
)
from tests.sqlite_copy import copy_sqlite_database

_PG_REASON = postgres_unavailable()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The admin URL of the test PostgreSQL, or skip."""
    if _PG_REASON is not None:
        pytest.skip(_PG_REASON)
    return POSTGRES_ADMIN_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    """An empty database URL: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'nx.db'}"
        return
    if _PG_REASON is not None:
        pytest.skip(_PG_REASON)
    url = create_pg_database(POSTGRES_ADMIN_URL)
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="session")
def _migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One database per kind migrated to head once per test process, to copy from.

    Running 21 migrations costs about a second a test on these cores; a copy of a
    migrated database costs milliseconds (SQLite's backup API) or a fraction of a second
    (PostgreSQL's ``CREATE DATABASE ... TEMPLATE``). The migrations themselves are tested
    from empty in test_db.py.
    """
    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'nx.db'}"
    migrate(sqlite_url)
    templates = {"sqlite": sqlite_url}
    if _PG_REASON is None:
        templates["postgres"] = create_pg_database(POSTGRES_ADMIN_URL, prefix="nx_template")
        migrate(templates["postgres"])
    try:
        yield templates
    finally:
        if "postgres" in templates:
            drop_pg_database(templates["postgres"])


@pytest.fixture
def migrated_url(db_url: str, _migrated_templates: dict[str, str]) -> str:
    """A database at the newest schema (a copy of one migrated for this test process)."""
    if db_url.startswith("sqlite"):
        copy_sqlite_database(_migrated_templates["sqlite"], db_url)
    else:
        recreate_from_template(db_url, _migrated_templates["postgres"])
    return db_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on the migrated test database."""
    eng = make_engine(migrated_url, immediate=True)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def session(migrated_url: str) -> Iterator[Session]:
    """A reading session on the migrated test database (its own engine, no write lock)."""
    eng = make_engine(migrated_url)
    try:
        with Session(eng, expire_on_commit=False) as s:
            yield s
    finally:
        eng.dispose()


AuthHeaders = Callable[..., dict[str, str]]
"""``auth_headers(role, areas=(), name=None)``: bearer headers of a live token."""


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header of a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def make_token(url: str, role: str, *, name: str | None = None, areas: Iterable[str] = ()
               ) -> str:
    """Create a token in the database at ``url``; return it (named ``test-<role>`` by default)."""
    eng = make_engine(url, immediate=True)
    try:
        with Session(eng) as s:
            return create_token(s, name=name or f"test-{role}", role=role, areas=areas)
    finally:
        eng.dispose()


@pytest.fixture
def auth_headers(migrated_url: str) -> AuthHeaders:
    """Bearer headers per role for the migrated test database (one token per distinct ask)."""
    made: dict[tuple[str, tuple[str, ...], str | None], dict[str, str]] = {}

    def headers(role: str, *, areas: Iterable[str] = (), name: str | None = None
                ) -> dict[str, str]:
        key = (str(role), tuple(sorted(areas)), name)
        if key not in made:
            suffix = "-" + "-".join(key[1]) if key[1] else ""
            made[key] = bearer(make_token(migrated_url, str(role),
                                          name=name or f"test-{role}{suffix}", areas=key[1]))
        return made[key]

    return headers


def register(session: Session, machine_id: str, *, count: int = 8, capacity: int = 10,
             threshold: int = 2, slots: int = 1, area: str | None = None) -> None:
    """Register a test machine with ``slots`` naloxone slots (in a named ``area``)."""
    crud.register_machine(
        session=session, machine_id=machine_id, name=f"Machine {machine_id}", lat=40.7,
        lon=-74.0, site="test", area=area, actor="test",
        slots=[{"slot": n, "product": "naloxone-nasal-4mg", "capacity": capacity,
                "count": count, "low_threshold": threshold} for n in range(1, slots + 1)],
    )


def ingest_settings(url: str, broker: MosquittoBroker, **overrides: object) -> Settings:
    """Settings for an ingest worker on the test broker, with short timings."""
    values: dict[str, object] = {
        "environment": "test",
        "database_url": url,
        "mqtt_host": broker.host,
        "mqtt_port": broker.port,
        "mqtt_username": "nx-backend",
        "mqtt_password": BACKEND_PASSWORD,
        "ingest_batch_max_wait_s": 0.05,
        "ingest_retry_backoff_s": 0.05,
        "ingest_maintenance_interval_s": 0.2,
        "ingest_reconnect_min_s": 1,
        "ingest_reconnect_max_s": 2,
        # In-process writer, which tests can wrap; the child process is tested in
        # test_writer_process.py and by the `nx-backend ingest` reliability tests.
        "ingest_writer_process": False,
    }
    values.update(overrides)
    return Settings.model_validate(values)
