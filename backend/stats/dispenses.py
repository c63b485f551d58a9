"""Dispense counts over time: one GROUP BY on time buckets in SQL, folded into local buckets.

Day and week buckets: SQL groups successful dispenses by the city's calendar
day (and area, product or machine), so the database returns at most days x
groups rows; weeks (Monday first) are folded from days here. PostgreSQL
converts with ``AT TIME ZONE``; SQLite, which knows no zones, shifts each
time by the zone's UTC offset, one CASE branch per offset period (the
daylight-saving changes in the range, found with zoneinfo). Hour buckets:
SQL groups by UTC hour (at most 744 per group), folded into local hours here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, literal_column
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


def offset_periods(lo: dt.datetime, hi: dt.datetime, zone: ZoneInfo
                   ) -> list[tuple[dt.datetime, int]]:
    """Return (from this UTC time on, UTC offset in minutes) of ``zone`` over [lo, hi)."""

    def offset(moment: dt.datetime) -> int:
        delta = moment.astimezone(zone).utcoffset() or dt.timedelta(0)
        return int(delta.total_seconds() // 60)

    start = lo.astimezone(dt.UTC)
    periods = [(start, offset(start))]
    day = start
    while day < hi:
        after = min(day + dt.timedelta(days=1), hi)
        if offset(after) != periods[-1][1]:
            # Bisect to the minute the offset changed.
            a, b = day, after
            while b - a > dt.timedelta(minutes=1):
                mid = a + (b - a) / 2
                a, b = (mid, b) if offset(mid) == periods[-1][1] else (a, mid)
            b = b.replace(second=0, microsecond=0)
            periods.append((b, offset(b)))
        day = after
    return periods


def _day_expression(dialect: str, lo: dt.datetime, hi: dt.datetime, zone: ZoneInfo
                    ) -> ColumnElement[str]:
    """Return the city's calendar day of a dispense as 'YYYY-MM-DD' text on this dialect."""
    when = col(DispenseEvent.device_time)
    if dialect != "sqlite":
        return func.to_char(func.timezone(zone.key, when), literal_column("'YYYY-MM-DD'"))
    periods = offset_periods(lo, hi, zone)
    shift: Any = literal(f"{periods[-1][1]:+d} minutes")
    if len(periods) > 1:
        shift = case(*[(when < start, f"{minutes:+d} minutes")
                       for (_, minutes), (start, _) in pairwise(periods)],
                     else_=f"{periods[-1][1]:+d} minutes")
    return func.date(when, shift)


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


def fold_days(
    rows: Iterable[tuple[str, str | None, int]],
    starts: Sequence[dt.datetime],
    bucket: Bucket,
    missing: str = NO_AREA,
) -> CountTable:
    """Fold (local 'YYYY-MM-DD', group, count) rows into day or week buckets (pure)."""
    column = {start.date(): i for i, start in enumerate(starts)}
    tally: dict[str, list[int]] = defaultdict(lambda: [0] * len(starts))
    for text, group, count in rows:
        day = dt.date.fromisoformat(str(text)[:10])
        if bucket is Bucket.WEEK:
            day -= dt.timedelta(days=day.weekday())
        index = column.get(day)
        if index is not None:
            tally[group if group is not None else missing][index] += int(count)
    groups = sorted(tally)
    return CountTable(list(starts), groups, [tally[g] for g in groups])


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
    dialect = session.get_bind().dialect.name
    if bucket is Bucket.HOUR:
        hour = _hour_expression(dialect).label("bucket")
    else:
        hour = _day_expression(dialect, lo, hi, zone).label("bucket")
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
    starts = bucket_starts(first, last, bucket, zone)
    if bucket is Bucket.HOUR:
        return fold(rows, starts, bucket, zone, missing)
    return fold_days(rows, starts, bucket, missing)


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
