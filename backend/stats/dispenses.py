"""Dispense counts over time: GROUP BY on time buckets in SQL, folded into local buckets.

Day and week buckets: SQL groups successful dispenses by the city's calendar
day (PostgreSQL: day or Monday-first week) and machine first, then joins
machines and groups by area, product or machine, so the database returns at
most buckets x groups rows and the join meets at most buckets x machines rows,
whatever plan the planner picks (a join of every dispense planned from stale
statistics took 17 s for a year, docs/hotspots.md). PostgreSQL converts with
``AT TIME ZONE``; SQLite, which knows no zones, shifts each time by the zone's
UTC offset, one CASE branch per offset period (the daylight-saving changes in
the range, found with zoneinfo); there weeks are folded from days here. Hour
buckets: SQL groups by UTC hour (at most 744 per group), folded into local
hours here.
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

from sqlalchemy import case, func, literal, literal_column, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

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


def _day_expression(dialect: str, lo: dt.datetime, hi: dt.datetime, zone: ZoneInfo,
                    bucket: Bucket = Bucket.DAY) -> ColumnElement[Any]:
    """Return the city's calendar day of a dispense ('YYYY-MM-DD' text or a date).

    PostgreSQL truncates a week to its Monday itself; SQLite gives the day.
    """
    when = col(DispenseEvent.device_time)
    if dialect != "sqlite":
        local = func.timezone(zone.key, when)  # a timestamp without zone: the city's wall time
        if bucket is Bucket.WEEK:
            local = func.date_trunc("week", local)  # Monday, as bucket_starts counts
        return func.date(local)
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
        when = _hour_expression(dialect).label("bucket")
    else:
        when = _day_expression(dialect, lo, hi, zone, bucket).label("bucket")
    machine_id: Any = col(DispenseEvent.machine_id).label("machine_id")
    product: Any = col(DispenseEvent.product).label("product")
    # First per machine (and product when split by it), without a join: a bad plan can
    # then cost at most buckets x machines rows, not one pass over machines per dispense.
    inner_keys: list[Any] = [when, machine_id] + ([product] if group is Group.PRODUCT else [])
    per_machine = (
        select(*inner_keys, func.count().label("n"))
        .where(
            col(DispenseEvent.result) == "ok",
            col(DispenseEvent.device_time) >= lo,
            col(DispenseEvent.device_time) < hi,
        )
        .group_by(*inner_keys)
    )
    if products:
        per_machine = per_machine.where(col(DispenseEvent.product).in_(list(products)))
    counted = per_machine.subquery("per_machine")
    key: Any = (col(Machine.area) if group is Group.AREA
                else counted.c.product if group is Group.PRODUCT else counted.c.machine_id)
    query = (
        select(counted.c.bucket, key, func.sum(counted.c.n))
        .select_from(counted)
        .join(Machine, col(Machine.id) == counted.c.machine_id)
        .where(machine_filter(principal))
        .group_by(counted.c.bucket, key)
    )
    rows = [(bucket_text, group_key, int(n)) for bucket_text, group_key, n
            in session.execute(query).all()]
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
