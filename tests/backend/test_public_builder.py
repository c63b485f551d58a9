"""The feed built in a child process, as ``nx-backend serve`` does: same bytes, clear failures."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from backend import crud
from backend.db import migrate
from backend.models import MachineListingUpdate
from backend.public.builder import ProcessBuilder
from backend.public.cache import FeedBuildError, FeedSnapshot, read_snapshot
from backend.public.feed import FeedRenderer
from tests.backend.conftest import register

SILENT_AFTER = timedelta(minutes=15)


def _build(builder: ProcessBuilder) -> FeedSnapshot:
    async def once() -> FeedSnapshot:
        return await builder()

    return asyncio.run(once())


def test_child_builds_the_same_snapshot_as_the_api_would(migrated_url: str,
                                                         engine: Engine) -> None:
    with Session(engine) as session:
        for n in (1, 2):
            register(session, f"test-00{n}", count=n)
            crud.update_public_listing(
                session=session, machine_id=f"test-00{n}", actor="test",
                changes=MachineListingUpdate(public_name=f"Place {n}", opening_hours="24/7"))
    builder = ProcessBuilder(migrated_url, SILENT_AFTER)
    try:
        built = _build(builder)
        again = _build(builder)  # the same child, its fragments reused
    finally:
        builder.close()
    here = read_snapshot(engine, SILENT_AFTER, FeedRenderer())
    assert built == again == here
    assert [m["name"] for m in json.loads(built.json.identity.body)["machines"]] == [
        "Place 1", "Place 2"]


def test_a_database_the_child_cannot_read_is_a_build_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate(url, "0001")  # tables from before the public listing
    builder = ProcessBuilder(url, SILENT_AFTER)
    try:
        with pytest.raises(FeedBuildError, match="database error"):
            _build(builder)
    finally:
        builder.close()


def _builder_children() -> list[int]:
    """Return the pids of this process's multiprocessing workers (not its resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if ppid == os.getpid() and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_a_child_that_dies_is_replaced(migrated_url: str, engine: Engine) -> None:
    with Session(engine) as session:
        register(session, "test-001")
        crud.update_public_listing(session=session, machine_id="test-001", actor="test",
                                   changes=MachineListingUpdate(public_name="Place 1"))
    builder = ProcessBuilder(migrated_url, SILENT_AFTER)
    try:
        _build(builder)
        [child] = _builder_children()
        os.kill(child, signal.SIGKILL)  # as the OOM killer would
        with pytest.raises(FeedBuildError, match="died"):
            _build(builder)
        assert json.loads(_build(builder).json.identity.body)["machines"][0]["name"] == "Place 1"
    finally:
        builder.close()
