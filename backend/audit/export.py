"""Write audit records as JSON Lines or CSV (before/after as JSON text in a CSV cell)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import Any, Literal, TextIO

from backend.models import AuditRecord

Format = Literal["csv", "jsonl"]
COLUMNS = ("id", "at", "actor", "action", "object_type", "object_id", "request_id",
           "before", "after")


def as_row(record: AuditRecord) -> dict[str, Any]:
    """Return a record as plain JSON values (time as ISO 8601 UTC)."""
    return {
        "id": record.id,
        "at": record.at.isoformat(),
        "actor": record.actor,
        "action": record.action,
        "object_type": record.object_type,
        "object_id": record.object_id,
        "request_id": record.request_id,
        "before": record.before,
        "after": record.after,
    }


def write_jsonl(records: Iterable[AuditRecord], out: TextIO) -> int:
    """Write one JSON object per line; return how many."""
    count = 0
    for record in records:
        out.write(json.dumps(as_row(record), ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def write_csv(records: Iterable[AuditRecord], out: TextIO) -> int:
    """Write a header and one row per record; return how many."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for record in records:
        row = as_row(record)
        for name in ("before", "after"):
            # An empty cell is "none"; JSON null would read back as the text "null".
            row[name] = "" if row[name] is None else json.dumps(row[name], sort_keys=True)
        row["request_id"] = row["request_id"] or ""
        writer.writerow(row)
        count += 1
    return count


def write(records: Iterable[AuditRecord], out: TextIO, fmt: Format) -> int:
    """Write ``records`` in format ``fmt``; return how many."""
    return write_csv(records, out) if fmt == "csv" else write_jsonl(records, out)
