"""Turn audit records into table rows (pure, tested without Streamlit)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from console.api_models import AuditRecord

MAX_CHANGE_CHARS = 300
"""A before/after cell longer than this is cut: the table is for scanning, the API has it all."""


def change_text(values: dict[str, Any] | None) -> str:
    """Return a compact one-line JSON of a record's before or after ("" for none)."""
    if values is None:
        return ""
    text = json.dumps(values, sort_keys=True, separators=(", ", ": "), default=str)
    return text if len(text) <= MAX_CHANGE_CHARS else text[: MAX_CHANGE_CHARS - 1] + "…"


def audit_rows(records: Iterable[AuditRecord]) -> list[dict[str, Any]]:
    """Return one table row per record, in the API's order (newest first)."""
    return [
        {
            "when": record.at,
            "who": record.actor,
            "what": record.action,
            "object": f"{record.object_type} {record.object_id}",
            "before": change_text(record.before),
            "after": change_text(record.after),
            "request id": record.request_id or "",
        }
        for record in records
    ]
