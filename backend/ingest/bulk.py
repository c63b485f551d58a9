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
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return _insert_new_sqlite(session, model, rows, key)
    if dialect != "postgresql":
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


SQLITE_ROWS_PER_STATEMENT = 100
"""Rows per INSERT on SQLite: few distinct statement texts, well under its 32,766 variables."""


def sqlite_chunk_sizes(total: int) -> list[int]:
    """Split ``total`` rows into full statements and a remainder in powers of two.

    Every distinct statement text is prepared once and kept in the sqlite3
    module's per-connection cache (128 statements, least recently used out),
    and a prepared multi-row INSERT is large: 100 texts of 1..100 rows of an
    event table took 7.7 MB. With the remainder as it came (any of 1..99 rows)
    the cache filled one new size at a time for as long as the writer ran: the
    soak benchmark saw the writer grow 3.2 MB over 200,000 messages
    (tests/benchmarks/test_soak.py). In powers of two there are 8 sizes per
    table (100, 64, 32, ..., 1), all prepared within the first batches; a
    remainder costs at most 7 statements instead of 1.
    """
    sizes = [SQLITE_ROWS_PER_STATEMENT] * (total // SQLITE_ROWS_PER_STATEMENT)
    rest = total % SQLITE_ROWS_PER_STATEMENT
    power = 1 << (SQLITE_ROWS_PER_STATEMENT.bit_length() - 1)
    while rest:
        if rest >= power:
            sizes.append(power)
            rest -= power
        power >>= 1
    return sizes


def _insert_new_sqlite(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
) -> set[tuple[Any, ...]]:
    # SQLAlchemy compiles and processes every parameter of an executemany with
    # RETURNING through its generic machinery, which was a third of the writer's
    # time. Here each column's own bind processor (the same conversion the ORM
    # applies, so the stored values are identical) runs over plain tuples, and the
    # driver gets a multi-row VALUES statement whose text repeats batch to batch.
    connection = session.connection()
    dialect = connection.dialect
    table = model.__table__  # type: ignore[attr-defined]
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    quote = dialect.identifier_preparer.quote
    # Identifiers come from our own table and are quoted; every value is bound.
    target = dialect.identifier_preparer.format_table(table)
    head = f"INSERT INTO {target} ({', '.join(quote(n) for n in names)}) VALUES "  # noqa: S608
    tail = f" ON CONFLICT DO NOTHING RETURNING {', '.join(quote(k) for k in key)}"
    one_row = "(" + ", ".join("?" * len(names)) + ")"
    inserted: set[tuple[Any, ...]] = set()
    start = 0
    for size in sqlite_chunk_sizes(len(rows)):
        chunk = rows[start : start + size]
        start += size
        params: list[Any] = []
        for row in chunk:
            for name, process in zip(names, processors, strict=True):
                value = row[name]
                params.append(value if process is None or value is None else process(value))
        sql = head + ", ".join([one_row] * len(chunk)) + tail
        inserted.update(tuple(r) for r in connection.exec_driver_sql(sql, tuple(params)))
    return inserted
