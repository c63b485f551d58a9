"""The audit trail (admin): read only; nothing in the API changes or deletes a record."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from backend.api.deps import SessionDep
from backend.api.schemas import AuditPage, AuditRecordPublic
from backend.audit.query import AuditFilter, list_audit

# A filter is matched against stored text: no control characters (PostgreSQL refuses NUL).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
def list_records(
    session: SessionDep,
    since: Annotated[AwareDatetime | None, Query(
        description="From this time on (ISO 8601 with an offset)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before this time")] = None,
    actor: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE)] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=PRINTABLE)] = None,
    object_type: Annotated[str | None, Query(max_length=32, pattern=PRINTABLE)] = None,
    object_id: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> AuditPage:
    """List audit records, newest first, with how many match in all."""
    filters = AuditFilter(since=since, until=until, actor=actor, action=action,
                          object_type=object_type, object_id=object_id)
    rows, total = list_audit(session, filters=filters, limit=limit, offset=offset)
    return AuditPage(
        data=[AuditRecordPublic.model_validate(r, from_attributes=True) for r in rows],
        count=total,
    )
