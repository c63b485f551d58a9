"""Demo children: started in their own process group, ready over HTTP, stopped as a group."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from simulators.broker import free_port
from simulators.processes import Child, ChildFailedError, entry_point
from tests.waiting import wait_until


def descendants(pid: int) -> set[int]:
    """Return every live descendant of ``pid`` (from /proc, Linux)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """Return whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_child_answers_http_then_its_whole_group_stops(tmp_path: Path) -> None:
    port = free_port()
    # The shell leaves a grandchild behind, as a server's worker would.
    script = f"sleep 300 & exec {sys.executable} -m http.server {port} --bind 127.0.0.1"
    child = Child("web", ["/bin/sh", "-c", script], os.environ, tmp_path / "logs" / "web.log")
    try:
        child.wait_http(f"http://127.0.0.1:{port}/", timeout_s=30)
        family = {child.pid} | descendants(child.pid)
        assert len(family) >= 2
        assert os.getpgid(child.pid) == child.pid  # it leads its own group
    finally:
        child.stop(grace_s=10)
    wait_until(lambda: not any(alive(pid) for pid in family), what="the group to exit")
    assert not child.alive()


def test_a_child_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    child = Child(
        "broken",
        [sys.executable, "-c", "import sys; print('no config here'); sys.exit(3)"],
        os.environ,
        tmp_path / "broken.log",
    )
    try:
        with pytest.raises(ChildFailedError, match=r"exited with code 3(.|\n)*no config here"):
            child.wait_http(f"http://127.0.0.1:{free_port()}/", timeout_s=30)
    finally:
        child.stop()


def test_entry_points_are_found_beside_the_interpreter() -> None:
    assert Path(entry_point("nx-console")).name == "nx-console"
    with pytest.raises(ChildFailedError, match="not installed"):
        entry_point("nx-no-such-tool")
