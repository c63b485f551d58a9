"""Every ``nx-backend`` command pays for the imports of the command tree: keep it light."""

from __future__ import annotations

import json
import subprocess
import sys

# Each of these costs from a few hundred milliseconds to over a second of start-up on
# the 2-core machines this runs on; only the commands that need them import them.
HEAVY = ("scipy", "ortools", "fastapi", "uvicorn", "apprise", "streamlit", "pandas")


def test_the_command_tree_loads_without_the_heavy_libraries() -> None:
    probe = (
        "import json, sys\n"
        "import backend.cli\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120)
    assert json.loads(out.stdout) == []
