"""Copying a SQLite database the way SQLite promises is consistent: its backup API."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from sqlalchemy.engine import make_url


def copy_sqlite_database(source_url: str, target_url: str) -> None:
    """Copy the database at ``source_url`` into ``target_url`` (a file copy could miss
    pages still in the write-ahead log)."""
    source, target = make_url(source_url).database, make_url(target_url).database
    if not source or not target:
        raise ValueError(f"not SQLite files: {source_url} -> {target_url}")
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
