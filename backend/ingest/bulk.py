"""Insert a batch of event rows, skipping duplicates, and say which keys were new."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, SQLModel

from backend.dbutil import insert_ignore


def insert_new(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
) -> set[tuple[Any, ...]]:
    """Insert ``rows`` (same scalar columns in each), skipping unique-key conflicts.

    Returns the ``key`` values of the rows actually inserted.
    """
    if not rows:
        return set()
    if session.get_bind().dialect.name != "postgresql":
        return {tuple(r) for r in insert_ignore(session, model, rows, returning=key)}
    # A multi-row VALUES list has one placeholder per value, and psycopg parses
    # such a long statement again on every batch (it caches only short ones):
    # that was most of the writer's time on PostgreSQL. One array parameter per
    # column, unnested in a SELECT, keeps the statement short and the same.
    table = model.__table__  # type: ignore[attr-defined]
    names = list(rows[0])
    columns = [
        func.unnest(
            bindparam(
                f"{name}_values",
                [row[name] for row in rows],
                type_=postgresql.ARRAY(table.c[name].type),
            )
        )
        for name in names
    ]
    stmt = (
        postgresql.insert(table)
        .from_select(names, select(*columns))
        .on_conflict_do_nothing()
        .returning(*(table.c[name] for name in key))
    )
    return {tuple(r) for r in session.execute(stmt).all()}
