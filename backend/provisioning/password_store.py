"""Add, rotate and remove entries in a Mosquitto password file, safely under concurrency.

Each change takes an exclusive lock on a sibling ``.lock`` file, re-reads the
file, and replaces it atomically, so two provisioning commands running at once
never lose each other's entries and the broker never reads a half-written file.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backend.provisioning.passwords import hash_password, new_password, write_entries

log = logging.getLogger(__name__)


class CredentialError(RuntimeError):
    """A credential change that cannot be made (duplicate, unknown, unreadable file)."""


def parse_entries(text: str) -> dict[str, str]:
    """Parse password-file text into ``{username: hash}``, skipping comments and junk."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, encoded = line.partition(":")
        if not sep or not name or not encoded:
            # Mosquitto skips such a line too; say so rather than drop it silently.
            log.warning("password file line %d is not 'user:hash'; ignored", number)
            continue
        entries[name] = encoded
    return entries


def render_entries(entries: dict[str, str]) -> list[str]:
    """Return password-file lines for ``entries``, sorted by username."""
    return [f"{name}:{encoded}\n" for name, encoded in sorted(entries.items())]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_entries(path: Path) -> dict[str, str]:
    """Return the entries of the password file at ``path`` (empty if it does not exist)."""
    try:
        return parse_entries(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CredentialError(f"cannot read password file {path}: {exc}") from exc


def set_password(path: Path, username: str, password: str | None = None, *,
                 replace: bool = False) -> str:
    """Give ``username`` a password (a fresh random one by default) and return it.

    Refuses to overwrite an existing entry unless ``replace`` (a rotation).
    """
    password = password if password is not None else new_password()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        entries = read_entries(path)
        if username in entries and not replace:
            raise CredentialError(
                f"{username} already has a broker credential; rotate it instead"
            )
        entries[username] = hash_password(password)
        write_entries(path, render_entries(entries))
    return password


def remove_password(path: Path, username: str) -> bool:
    """Remove ``username`` from the file; return whether it was there."""
    with _locked(path):
        entries = read_entries(path)
        if entries.pop(username, None) is None:
            return False
        write_entries(path, render_entries(entries))
    return True
