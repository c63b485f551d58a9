"""Run the real ``nx-backend`` entry point in a subprocess with a given environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI_TIMEOUT_S = 60.0
NX_BACKEND = Path(sys.executable).with_name("nx-backend")


def nx_backend(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``nx-backend ARGS`` and return the finished process (text output)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NX_")}
    full_env.update(env)
    return subprocess.run(
        [str(NX_BACKEND), *args], env=full_env, capture_output=True, text=True,
        timeout=CLI_TIMEOUT_S, check=False,
    )
