"""Helpers for the hotspot tests: test databases on PostgreSQL."""

from __future__ import annotations

import os
import uuid

from sqlalchemy.engine import make_url

POSTGRES_ADMIN_URL = os.environ.get(
    "NX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def postgres_unavailable() -> str | None:
    """Return why the test PostgreSQL cannot be used, or None when it answers."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    url = make_url(POSTGRES_ADMIN_URL)
    try:
        with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                             dbname=url.database, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {url.host}:{url.port} does not answer ({exc.__class__.__name__})"


def create_pg_database() -> str:
    """Create a fresh database on the test PostgreSQL; return its URL."""
    import psycopg

    url = make_url(POSTGRES_ADMIN_URL)
    name = f"nx_hotspot_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                         dbname=url.database, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(db_url: str) -> None:
    """Drop a database made by `create_pg_database`."""
    import psycopg

    url = make_url(POSTGRES_ADMIN_URL)
    name = make_url(db_url).database
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                         dbname=url.database, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
