"""Dead letters in the database: per-machine quota, drop counts, flood alert, pruning."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from backend.alerts.rules import dead_letter_flood_spec
from backend.alerts.store import open_alert, resolve_alerts
from backend.dbutil import dialect_insert, insert_ignore
from backend.ingest.parse import Rejected
from backend.ingest.quota import Drops, Quota, Split, Usage, apply_quota, topic_machine
from backend.models import Alert, AlertStatus, AlertType, DeadLetter, DeadLetterDrops

log = logging.getLogger(__name__)

PRUNE_BATCH = 10_000
"""Most dead letters one maintenance run deletes: keeps its transaction short."""


@dataclass(frozen=True)
class DeadLetterPolicy:
    """What one machine's malformed messages may take: a quota per window."""

    quota: Quota
    window: timedelta


def dead_letter_digest(topic: str, payload: bytes) -> str:
    """Return the key that makes a message a dead letter once: SHA-256 of topic and payload."""
    # The NUL cannot occur in an MQTT topic, so no two (topic, payload) pairs collide.
    return hashlib.sha256(topic.encode("utf-8", "surrogatepass") + b"\0" + payload).hexdigest()


def dead_letter_rows(rejected: Sequence[Rejected]) -> list[dict[str, Any]]:
    """Return dead-letter rows for rejected messages."""
    return [
        {
            "received_at": r.message.received_at,
            "topic": r.message.topic[:512],
            "machine_id": topic_machine(r.message.topic),
            "malformed": r.malformed,
            "reason": r.reason[:500],
            "payload": r.message.payload,
            "digest": dead_letter_digest(r.message.topic, r.message.payload),
        }
        for r in rejected
    ]


def usage(session: Session, machines: Sequence[str], *, since: datetime) -> dict[str, Usage]:
    """Return the malformed dead letters (count, bytes) each machine keeps since ``since``."""
    if not machines:
        return {}
    table = DeadLetter.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        sa_select(
            table.c.machine_id,
            func.count(),
            func.coalesce(func.sum(func.length(table.c.payload)), 0),
        )
        .where(
            table.c.machine_id.in_(sorted(machines)),
            table.c.received_at >= since,
            table.c.malformed,
        )
        .group_by(table.c.machine_id)
    ).all()
    return {machine: Usage(int(count), int(size)) for machine, count, size in rows}


def store_dead_letters(
    session: Session,
    rejected: Sequence[Rejected],
    policy: DeadLetterPolicy | None,
    now: datetime,
) -> Split:
    """Store the rejected messages their machines' quotas allow; count and alert the rest."""
    if policy is None:
        split = Split(kept=list(rejected))
    else:
        machines = {topic_machine(r.message.topic) for r in rejected if r.malformed}
        split = apply_quota(
            rejected, usage(session, sorted(machines), since=now - policy.window), policy.quota
        )
    for r in split.kept:
        log.warning("dead letter on %s: %s", r.message.topic[:200], r.reason)
    insert_ignore(session, DeadLetter, dead_letter_rows(split.kept))
    if split.dropped:
        _record_drops(session, split.dropped, now)
        details = {} if policy is None else {
            "quota_count": policy.quota.count,
            "quota_bytes": policy.quota.bytes,
            "window_s": policy.window.total_seconds(),
        }
        for machine, drops in sorted(split.dropped.items()):
            opened = open_alert(session, dead_letter_flood_spec(machine), details=details, now=now)
            # A warning when the flood starts, not one per batch: the log must not flood too.
            log.log(
                logging.WARNING if opened else logging.DEBUG,
                "%s is over its dead-letter quota: %d malformed messages (%d bytes) counted, "
                "not stored", machine, drops.count, drops.bytes,
            )
    return split


def _record_drops(session: Session, dropped: Mapping[str, Drops], now: datetime) -> None:
    rows = [
        {"machine_id": machine, "dropped": d.count, "dropped_bytes": d.bytes,
         "first_dropped_at": now, "last_dropped_at": now}
        for machine, d in sorted(dropped.items())  # sorted: two workers lock rows in one order
    ]
    stmt = dialect_insert(session, DeadLetterDrops)
    table = DeadLetterDrops.__table__  # type: ignore[attr-defined]
    stmt = stmt.on_conflict_do_update(
        index_elements=["machine_id"],
        set_={
            "dropped": table.c.dropped + stmt.excluded.dropped,
            "dropped_bytes": table.c.dropped_bytes + stmt.excluded.dropped_bytes,
            "last_dropped_at": stmt.excluded.last_dropped_at,
        },
    )
    session.execute(stmt, rows)


def prune_dead_letters(session: Session, *, before: datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete up to ``limit`` dead letters received before ``before``, oldest first."""
    table = DeadLetter.__table__  # type: ignore[attr-defined]
    oldest = (
        sa_select(table.c.id).where(table.c.received_at < before)
        .order_by(table.c.received_at).limit(limit)
    )
    result = session.execute(delete(table).where(table.c.id.in_(oldest.scalar_subquery())))
    pruned = int(result.rowcount)  # type: ignore[attr-defined]
    if pruned:
        log.info("pruned %d dead letters received before %s", pruned, before.isoformat())
    return pruned


def resolve_ended_floods(session: Session, *, now: datetime, window: timedelta) -> int:
    """Resolve the flood alert of each machine that dropped nothing for a whole window."""
    quiet = session.exec(
        select(Alert.subject)
        .join(DeadLetterDrops, col(DeadLetterDrops.machine_id) == col(Alert.subject))
        .where(
            col(Alert.type) == AlertType.DEAD_LETTER_FLOOD.value,
            col(Alert.status) != AlertStatus.RESOLVED.value,
            col(DeadLetterDrops.last_dropped_at) < now - window,
        )
    ).all()
    return sum(
        resolve_alerts(session, AlertType.DEAD_LETTER_FLOOD, subject, now=now) for subject in quiet
    )
