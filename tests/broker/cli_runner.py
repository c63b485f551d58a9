"""Run the real ``nx-backend`` entry point in a subprocess with a given environment."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from backend.db import migrate

CLI_TIMEOUT_S = 60.0
NX_BACKEND = Path(sys.executable).with_name("nx-backend")


@functools.cache
def _migrated_template() -> Path:
    """Return a migrated SQLite file, made once per test process."""
    path = Path(tempfile.mkdtemp(prefix="nx-cli-db-")) / "template.db"
    migrate(f"sqlite:///{path}")
    return path


def scratch_database_url() -> str:
    """Return the URL of a fresh copy of a migrated SQLite database."""
    copy = Path(tempfile.mkdtemp(prefix="nx-cli-db-")) / "nx.db"
    shutil.copyfile(_migrated_template(), copy)
    return f"sqlite:///{copy}"


def nx_backend(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``nx-backend ARGS`` and return the finished process (text output).

    Device commands write an audit record to the database; a test that does
    not name one (``NX_DATABASE_URL``) gets a scratch copy of a migrated one.
    """
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NX_")}
    full_env.setdefault("NX_DATABASE_URL", scratch_database_url())
    full_env.update(env)
    return subprocess.run(
        [str(NX_BACKEND), *args], env=full_env, capture_output=True, text=True,
        timeout=CLI_TIMEOUT_S, check=False,
    )
