"""Small-count suppression of a table with row and column totals (pure).

Primary suppression hides every count with 1 <= count < k, cells and totals
alike (a row of one small cell has a small total). Complementary
suppression then hides more entries until no hidden entry can be recovered
by subtraction along one row or column: each row, each column, the row of
column totals and the column of row totals is an equation (its parts sum to
its total), and an equation with exactly one hidden entry gives that entry
away. While one has, a second entry of it is hidden: the smallest positive
visible cell, else the smallest visible cell, else its total.

What this does not defend against: solving several equations together
(a linear-programming attack) and the bounds that "<k" itself gives.
Tables published here are small and by area and period only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Entry = tuple[int, int]


@dataclass(frozen=True)
class Suppressed:
    """A table extended by a totals row and column; ``hidden`` says what is not shown.

    ``values[r][c]`` for r < rows and c < cols are the cells; the last column
    holds row totals, the last row column totals, the corner the grand total.
    ``primary`` marks the entries (cells or totals) hidden for being small.
    """

    values: tuple[tuple[int, ...], ...]
    hidden: frozenset[Entry]
    primary: frozenset[Entry]

    @property
    def rows(self) -> int:
        """Return the number of data rows (without the totals row)."""
        return len(self.values) - 1

    @property
    def cols(self) -> int:
        """Return the number of data columns (without the totals column)."""
        return len(self.values[0]) - 1

    def shown(self, r: int, c: int, small: str, hidden: str) -> int | str:
        """Return an entry as published: its count, ``small`` or ``hidden``."""
        if (r, c) in self.primary:
            return small
        if (r, c) in self.hidden:
            return hidden
        return self.values[r][c]


def equations(rows: int, cols: int) -> list[tuple[list[Entry], Entry]]:
    """Return each (parts, total) equation of an extended rows x cols table."""
    found = [([(r, c) for c in range(cols)], (r, cols)) for r in range(rows + 1)]
    found += [([(r, c) for r in range(rows)], (rows, c)) for c in range(cols + 1)]
    return found


def _extend(table: Sequence[Sequence[int]]) -> list[list[int]]:
    """Return the table with its row totals, column totals and grand total added."""
    width = len(table[0]) if table else 0
    if any(len(row) != width for row in table):
        raise ValueError("every row needs the same number of cells")
    if any(v < 0 for row in table for v in row):
        raise ValueError("counts cannot be negative")
    out = [[*row, sum(row)] for row in table]
    out.append([sum(row[c] for row in out) for c in range(width + 1)])
    return out


def suppress(table: Sequence[Sequence[int]], k: int) -> Suppressed:
    """Hide counts 1..k-1 and enough others that none of them follows from one equation."""
    if k < 1:
        raise ValueError("k must be at least 1")
    values = _extend(table)
    rows, cols = len(table), len(values[0]) - 1
    primary = {(r, c) for r in range(rows + 1) for c in range(cols + 1) if 0 < values[r][c] < k}
    hidden = set(primary)
    lines = equations(rows, cols)
    changed = bool(hidden)
    while changed:
        changed = False
        for parts, total in lines:
            entries = [*parts, total]
            if sum(e in hidden for e in entries) != 1:
                continue
            visible = [e for e in parts if e not in hidden]
            positive = [e for e in visible if values[e[0]][e[1]] > 0]
            pool = positive or visible
            pick = min(pool, key=lambda e: (values[e[0]][e[1]], e)) if pool else total
            hidden.add(pick)
            changed = True
    return Suppressed(tuple(tuple(row) for row in values), frozenset(hidden), frozenset(primary))
