"""Dialect-aware bulk helpers for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


def insert_ignore(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    *,
    returning: Sequence[str] = (),
) -> list[Row[Any]]:
    """Insert ``rows`` in bulk, skipping any that hit a unique constraint.

    With ``returning`` column names, return those columns of the rows that
    were actually inserted, which is how callers tell new from duplicate.
    """
    if not rows:
        return []
    table = model.__table__  # type: ignore[attr-defined]
    stmt = dialect_insert(session, model).on_conflict_do_nothing()
    if returning:
        stmt = stmt.returning(*(table.c[name] for name in returning))
        return list(session.execute(stmt, list(rows)).all())
    session.execute(stmt, list(rows))
    return []


def dialect_insert(session: Session, model: type[SQLModel]) -> Any:
    """Return the dialect's INSERT for ``model`` (it has ``on_conflict_do_*`` and ``excluded``)."""
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no INSERT ... ON CONFLICT for {dialect}")
