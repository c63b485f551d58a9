"""Dispense counts over time: one GROUP BY on hour buckets in SQL, folded into local buckets.

SQL groups successful dispenses by UTC hour (and area, product or machine)
on SQLite and PostgreSQL alike, so the database returns at most hours x
groups rows; the fold into the city's days and ISO weeks (Monday first)
happens here, where zoneinfo knows the daylight-saving rules. Zones whose
offset is not a whole number of hours would need finer SQL buckets.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal_column
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from backend.auth.principal import Principal
from backend.auth.scope import machine_filter
from backend.models import DispenseEvent, Machine

NO_AREA = "(no area)"
"""Label of machines outside every named area."""
NO_PRODUCT = "(unknown product)"


class Bucket(StrEnum):
    """Width of a time bucket."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


class Group(StrEnum):
    """What the counts are split by."""

    AREA = "area"
    PRODUCT = "product"
    MACHINE = "machine"


MAX_DAYS = {Bucket.HOUR: 31, Bucket.DAY: 800, Bucket.WEEK: 1200}
"""Longest range per bucket width, so an answer stays a few thousand points per series."""


@dataclass(frozen=True)
class CountTable:
    """Counts per group (rows) and bucket (columns), both in order."""

    buckets: list[dt.datetime]
    groups: list[str]
    counts: list[list[int]]


def _hour_expression(dialect: str) -> ColumnElement[str]:
    """Return the UTC hour of a dispense as 'YYYY-MM-DD HH' text on this dialect."""
    if dialect == "sqlite":
        # SQLite stores naive UTC text (backend/models/types.py).
        return func.strftime("%Y-%m-%d %H", col(DispenseEvent.device_time))
    return func.to_char(
        func.timezone("UTC", col(DispenseEvent.device_time)), literal_column("'YYYY-MM-DD HH24'")
    )


def bucket_start(moment: dt.datetime, bucket: Bucket, zone: ZoneInfo) -> dt.datetime:
    """Return the start (aware, in ``zone``) of the bucket holding ``moment``."""
    local = moment.astimezone(zone)
    if bucket is Bucket.HOUR:
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    if bucket is Bucket.WEEK:
        day -= dt.timedelta(days=day.weekday())
    return dt.datetime.combine(day, dt.time.min, zone)


def bucket_starts(first: dt.date, last: dt.date, bucket: Bucket, zone: ZoneInfo
                  ) -> list[dt.datetime]:
    """Return every bucket start from the day ``first`` to the day ``last``, in order."""
    lo = dt.datetime.combine(first, dt.time.min, zone)
    hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, zone)
    if bucket is Bucket.HOUR:
        # Step in UTC so a daylight-saving change neither skips nor repeats an hour.
        start, end = lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)
        hours = int((end - start).total_seconds() // 3600)
        return [(start + dt.timedelta(hours=h)).astimezone(zone) for h in range(hours)]
    day = bucket_start(lo, bucket, zone).date()
    step = dt.timedelta(days=7 if bucket is Bucket.WEEK else 1)
    out = []
    while day <= last:
        out.append(dt.datetime.combine(day, dt.time.min, zone))
        day += step
    return out


def fold(
    rows: Iterable[tuple[str, str | None, int]],
    starts: Sequence[dt.datetime],
    bucket: Bucket,
    zone: ZoneInfo,
    missing: str = NO_AREA,
) -> CountTable:
    """Fold (UTC 'YYYY-MM-DD HH', group, count) rows into local buckets (pure)."""
    column = {start: i for i, start in enumerate(starts)}
    tally: dict[str, list[int]] = defaultdict(lambda: [0] * len(starts))
    for hour, group, count in rows:
        moment = dt.datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=dt.UTC)
        index = column.get(bucket_start(moment, bucket, zone))
        if index is not None:
            tally[group if group is not None else missing][index] += int(count)
    groups = sorted(tally)
    return CountTable(list(starts), groups, [tally[g] for g in groups])


def count_dispenses(
    session: Session,
    *,
    principal: Principal,
    first: dt.date,
    last: dt.date,
    bucket: Bucket,
    group: Group,
    zone: ZoneInfo,
    products: Sequence[str] | None = None,
) -> CountTable:
    """Count successful dispenses from day ``first`` to day ``last`` (in ``zone``)."""
    lo = dt.datetime.combine(first, dt.time.min, zone)
    hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, zone)
    hour = _hour_expression(session.get_bind().dialect.name).label("hour")
    key: Any = {
        Group.AREA: col(Machine.area),
        Group.PRODUCT: col(DispenseEvent.product),
        Group.MACHINE: col(DispenseEvent.machine_id),
    }[group]
    query = (
        select(hour, key, func.count())
        .select_from(DispenseEvent)
        .join(Machine, col(Machine.id) == col(DispenseEvent.machine_id))
        .where(
            col(DispenseEvent.result) == "ok",
            col(DispenseEvent.device_time) >= lo,
            col(DispenseEvent.device_time) < hi,
            machine_filter(principal),
        )
        .group_by(hour, key)
    )
    if products:
        query = query.where(col(DispenseEvent.product).in_(list(products)))
    rows = session.exec(query).all()
    missing = NO_PRODUCT if group is Group.PRODUCT else NO_AREA
    return fold(rows, bucket_starts(first, last, bucket, zone), bucket, zone, missing)


EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2100, 12, 31)


def check_range(first: dt.date, last: dt.date, bucket: Bucket) -> None:
    """Refuse a range that is reversed, outside 2000-2100 or too long for ``bucket``."""
    if not (EARLIEST <= first <= LATEST and EARLIEST <= last <= LATEST):
        raise ValueError(f"dates must lie between {EARLIEST} and {LATEST}")
    if last < first:
        raise ValueError("'to' is before 'from'")
    if (last - first).days + 1 > MAX_DAYS[bucket]:
        raise ValueError(f"at most {MAX_DAYS[bucket]} days with {bucket.value} buckets")
