"""Turn a count table into what a caller may see: raw for admin, suppressed for the rest."""

from __future__ import annotations

from dataclasses import dataclass

from backend.stats.dispenses import CountTable
from backend.stats.suppression import Suppressed, suppress


@dataclass(frozen=True)
class Published:
    """A count table with totals; None marks a suppressed entry."""

    table: CountTable
    cells: list[list[int | None]]
    small: list[list[bool]]
    row_totals: list[int | None]
    col_totals: list[int | None]
    total: int | None
    k: int | None
    row_small: list[bool]
    col_small: list[bool]
    total_small: bool


def publish(table: CountTable, k: int | None) -> Published:
    """Suppress small counts and their complements with ``k`` (None: publish as is)."""
    rows, cols = len(table.groups), len(table.buckets)
    if rows == 0:  # nothing counted: every total is zero
        return Published(table, [], [], [], [0] * cols, 0, k, [], [False] * cols, False)
    result: Suppressed = suppress(table.counts, k if k is not None else 1)

    def entry(r: int, c: int) -> int | None:
        return None if (r, c) in result.hidden else result.values[r][c]

    return Published(
        table=table,
        cells=[[entry(r, c) for c in range(cols)] for r in range(rows)],
        small=[[(r, c) in result.primary for c in range(cols)] for r in range(rows)],
        row_totals=[entry(r, cols) for r in range(rows)],
        col_totals=[entry(rows, c) for c in range(cols)],
        total=entry(rows, cols),
        k=k,
        row_small=[(r, cols) in result.primary for r in range(rows)],
        col_small=[(rows, c) in result.primary for c in range(cols)],
        total_small=(rows, cols) in result.primary,
    )
