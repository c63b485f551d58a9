"""The public feed's cache and rules without a database: one rebuild at a time, ETags, states."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from sqlalchemy.exc import OperationalError

from backend.app import create_app
from backend.config import Settings
from backend.db import migrate
from backend.models import utcnow
from backend.public.availability import Availability, naloxone_availability
from backend.public.cache import (
    FeedSnapshot,
    FeedUnavailableError,
    PublicFeedCache,
    Representation,
    accepts_gzip,
    etag_matches,
)
from backend.public.feed import FeedRenderer, PublicMachine, geojson_feature, public_fields
from tests.http_server import serve_http

TIMEOUT = timedelta(minutes=15)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _snapshot(text: str) -> FeedSnapshot:
    return FeedSnapshot(Representation.of(text.encode()), Representation.of(b"geo" + text.encode()))


@pytest.mark.parametrize(("status", "age", "counts", "expected"), [
    ("online", timedelta(0), [0, 3], Availability.AVAILABLE),
    ("online", timedelta(0), [0, 0], Availability.OUT),
    ("online", timedelta(0), [], Availability.OUT),
    ("online", TIMEOUT + timedelta(seconds=1), [5], Availability.UNKNOWN),
    ("online", TIMEOUT - timedelta(seconds=1), [5], Availability.AVAILABLE),
    ("online", None, [5], Availability.UNKNOWN),
    ("offline", timedelta(0), [5], Availability.UNKNOWN),
    ("unknown", timedelta(0), [5], Availability.UNKNOWN),
])
def test_availability_rule(status: str, age: timedelta | None, counts: list[int],
                           expected: Availability) -> None:
    now = utcnow()
    last_seen = None if age is None else now - age
    assert naloxone_availability(status=status, last_seen=last_seen, now=now,
                                 silent_after=TIMEOUT, naloxone_counts=counts) is expected


def test_etag_matching() -> None:
    rep = Representation.of(b"body")
    tag = rep.identity.etag
    assert tag == Representation.of(b"body").identity.etag != Representation.of(b"x").identity.etag
    assert rep.gzip.etag not in (tag, f"W/{tag}")
    assert not etag_matches(tag, rep.gzip.etag)
    assert rep.gzip.body == Representation.of(b"body").gzip.body  # no timestamp inside
    assert gzip.decompress(rep.gzip.body) == b"body"
    assert etag_matches(tag, tag)
    assert etag_matches(f"W/{tag}", tag)
    assert etag_matches(f'"a", {tag} , "b"', tag)
    assert etag_matches("*", tag)
    assert not etag_matches(None, tag)
    assert not etag_matches("", tag)
    assert not etag_matches('"a", "b"', tag)
    assert not etag_matches(tag.strip('"'), tag)


@pytest.mark.parametrize(("header", "expected"), [
    ("gzip", True),
    ("gzip, deflate, br", True),
    ("br;q=1.0, gzip;q=0.8", True),
    ("GZIP", True),
    ("x-gzip", True),
    ("*", True),
    ("gzip;q=0", False),
    ("*, gzip;q=0", False),
    ("gzip;q=0.0, *", False),
    ("gzip;q=nonsense", False),
    ("identity", False),
    ("deflate, br", False),
    ("*;q=0", False),
    ("", False),
    (None, False),
])
def test_accepts_gzip(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_one_rebuild_at_a_time_and_the_old_snapshot_meanwhile() -> None:
    clock = FakeClock()
    release = threading.Event()
    builds: list[int] = []

    def build_in_thread() -> FeedSnapshot:
        builds.append(1)
        if len(builds) > 1:
            release.wait(10)
        return _snapshot(f"v{len(builds)}")

    async def build() -> FeedSnapshot:
        return await anyio.to_thread.run_sync(build_in_thread)

    cache = PublicFeedCache(build, ttl_s=1.0, clock=clock)

    async def scenario() -> None:
        first = await cache.get()
        assert first == _snapshot("v1")
        assert await cache.get() is first  # within the ttl: no build
        clock.now += 1.5
        rebuilding = asyncio.ensure_future(cache.get())
        while len(builds) < 2:  # the rebuild has started in its worker thread
            await asyncio.sleep(0.001)
        served = await asyncio.gather(*(cache.get() for _ in range(20)))
        assert all(s is first for s in served)  # nobody waits, nobody rebuilds again
        release.set()
        assert await rebuilding == _snapshot("v2")
        assert await cache.get() == _snapshot("v2")

    asyncio.run(scenario())
    assert len(builds) == 2


def test_a_failed_read_is_not_retried_within_the_ttl() -> None:
    clock = FakeClock()
    calls: list[int] = []

    async def build() -> FeedSnapshot:
        calls.append(1)
        raise OperationalError("SELECT", {}, Exception("database is down"))

    cache = PublicFeedCache(build, ttl_s=1.0, clock=clock)

    async def scenario() -> None:
        for _ in range(5):
            with pytest.raises(FeedUnavailableError):
                await cache.get()
        clock.now += 1.5
        with pytest.raises(FeedUnavailableError):
            await cache.get()

    asyncio.run(scenario())
    assert len(calls) == 2


async def _never() -> FeedSnapshot:
    raise AssertionError("not built")


def test_the_feed_must_be_cached() -> None:
    with pytest.raises(ValueError, match="cached"):
        PublicFeedCache(_never, ttl_s=0)
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(public_feed_cache_s=0)


def test_database_down_is_a_503_with_retry_after(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nx.db"
    migrate(url)
    app = create_app(Settings(environment="test", database_url=url))

    async def broken() -> FeedSnapshot:
        raise OperationalError("SELECT", {}, Exception("database is down"))

    app.state.public_feed = PublicFeedCache(broken, ttl_s=2.0)
    with serve_http(app) as base_url, httpx.Client(base_url=base_url, timeout=10) as http:
        response = http.get("/public/v1/machines")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "database is down" not in response.text


def test_renderer_reuses_fragments_and_matches_a_full_render() -> None:
    machines = [PublicMachine(f"id{n}", f"Place {n}", 40.0 + n, -74.0, "24/7" if n else None,
                              Availability.AVAILABLE) for n in range(3)]
    renderer = FeedRenderer()
    plain, geo = renderer.render(machines)
    assert json.loads(plain) == {"machines": [public_fields(m) for m in machines]}
    assert json.loads(geo) == {"type": "FeatureCollection",
                               "features": [geojson_feature(m) for m in machines]}
    changed = [machines[0], replace(machines[1], naloxone=Availability.OUT), machines[2]]
    plain, _ = renderer.render(changed)
    assert [m["naloxone"] for m in json.loads(plain)["machines"]] == [
        "available", "out", "available"]
    assert renderer.render([]) == (b'{"machines":[]}',
                                   b'{"type":"FeatureCollection","features":[]}')
