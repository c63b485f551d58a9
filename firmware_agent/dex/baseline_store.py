"""Keep the DEX counter baseline in a small JSON file that survives restarts."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from firmware_agent.dex.deltas import Baseline

log = logging.getLogger(__name__)

FILE_NAME = "dex-baseline.json"


def dumps(baseline: Baseline) -> str:
    """Serialise a baseline to the JSON text kept on disk (and in Batch.state)."""
    return json.dumps(baseline.to_json_dict(), sort_keys=True, separators=(",", ":"))


def loads(text: str) -> Baseline:
    """Read a baseline back; raise ValueError when the text is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"DEX baseline is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("DEX baseline is not a JSON object")
    return Baseline.from_json_dict(data)


class BaselineStore:
    """The baseline file in the agent's data directory, replaced atomically."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME

    def load(self) -> Baseline | None:
        """Return the stored baseline, or None when there is none or it is unreadable."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read DEX baseline %s: %s; starting without one", self.path, exc)
            return None
        try:
            return loads(text)
        except ValueError as exc:
            log.warning("ignoring DEX baseline %s: %s", self.path, exc)
            return None

    def save(self, baseline: Baseline) -> None:
        """Write ``baseline`` durably (temp file, fsync, rename); raise OSError on failure."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(dumps(baseline))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        # The rename itself must reach the disk before we call the baseline committed.
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
