"""Mosquitto password-file entries, written without shelling out to ``mosquitto_passwd``."""

from __future__ import annotations

import base64
import grp
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

# Mosquitto 2 format "$7$<iterations>$<salt>$<hash>": PBKDF2-HMAC-SHA512,
# 12-byte salt, both base64 with padding. 101 is mosquitto_passwd's own
# default; raising it slows every CONNECT on a small broker host.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
BROKER_GROUP = "mosquitto"


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = PBKDF2_ITERATIONS) -> str:
    """Return the Mosquitto ``$7$`` hash of ``password``."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Check ``password`` against a ``$7$`` hash, in constant time."""
    try:
        _, algo, iterations, salt, digest = encoded.split("$")
    except ValueError:
        return False
    if algo != "7":
        return False
    expected = hash_password(password, salt=base64.b64decode(salt), iterations=int(iterations))
    return hmac.compare_digest(expected.split("$")[-1], digest)


def new_password() -> str:
    """Return a fresh random device password (URL-safe, 192 bits)."""
    return secrets.token_urlsafe(24)


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Write ``users`` (name -> plain password) as a Mosquitto password file.

    The file is replaced atomically and made readable by the broker's user:
    Mosquitto started as root drops to ``mosquitto`` and then cannot read a
    0600 root-owned file, which is the usual start-up trap (see ``write_entries``).
    """
    lines = [f"{name}:{hash_password(password)}\n" for name, password in sorted(users.items())]
    write_entries(path, lines)


def write_entries(path: Path, lines: list[str]) -> None:
    """Atomically replace ``path`` with ``lines``, readable by the broker's user only.

    As root (production, CI) the file becomes ``root:mosquitto`` mode 0640:
    the broker, which drops to ``mosquitto``, reads it through its group and
    nobody else reads the hashes (newer Mosquitto 2.0 releases warn about a
    world-readable password file). Without root, or without that group, the
    broker runs as the writer or cannot be told apart, so 0644 is kept.
    """
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    group = _broker_group()
    if group is not None:
        os.chown(tmp, 0, group)
        os.chmod(tmp, 0o640)
    else:
        os.chmod(tmp, 0o644)
    tmp.replace(path)


def _broker_group() -> int | None:
    if os.geteuid() != 0:
        return None
    try:
        return grp.getgrnam(BROKER_GROUP).gr_gid
    except KeyError:
        return None
