"""The test PostgreSQL: whether it answers, and a fresh database per use."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    import psycopg

POSTGRES_ADMIN_URL = os.environ.get(
    "NX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
"""Where the tests create their databases; set NX_TEST_POSTGRES_URL to point elsewhere."""


def _connect(url: URL, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    import psycopg  # imported late: the suite runs without psycopg, skipping these tests

    return psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                           password=url.password, dbname=url.database, connect_timeout=3,
                           autocommit=autocommit)


def postgres_unavailable(admin_url: str = POSTGRES_ADMIN_URL) -> str | None:
    """Return why the test PostgreSQL cannot be used, or None when it answers."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    url = make_url(admin_url)
    try:
        with _connect(url):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {url.host}:{url.port} does not answer ({exc.__class__.__name__})"


def create_pg_database(admin_url: str = POSTGRES_ADMIN_URL, prefix: str = "nx_test") -> str:
    """Create a fresh, uniquely named database; return its URL."""
    url = make_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(db_url: str, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    """Drop a database made by ``create_pg_database``, closing its connections."""
    name = make_url(db_url).database
    with _connect(make_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recreate_from_template(db_url: str, template_url: str,
                           admin_url: str = POSTGRES_ADMIN_URL) -> None:
    """Make the database at ``db_url`` a fresh copy of the one at ``template_url``.

    The template must have no open connections (PostgreSQL refuses to copy one in use).
    """
    name, template = make_url(db_url).database, make_url(template_url).database
    with _connect(make_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
