"""``nx-console``: start the Streamlit console with production-minded flags."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from console.settings import ConsoleSettings

APP_FILE = Path(__file__).resolve().parent / "app.py"


def streamlit_command(*, port: int, address: str, python: str = sys.executable) -> list[str]:
    """Return the ``streamlit run`` command line for the console app."""
    return [
        python,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.headless=true",
        f"--server.port={port}",
        f"--server.address={address}",
        # A served console is not a development session: no file watching, no telemetry.
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
        "--client.toolbarMode=viewer",
    ]


def parse_args(argv: Sequence[str] | None, defaults: ConsoleSettings) -> argparse.Namespace:
    """Parse ``nx-console`` options; settings from the environment are the defaults."""
    parser = argparse.ArgumentParser(prog="nx-console", description="Run the NaloxNet console.")
    parser.add_argument("--port", type=int, default=defaults.port, help="HTTP port to serve on")
    parser.add_argument("--address", default=defaults.address, help="address to bind")
    parser.add_argument(
        "--api-url", default=defaults.api_url, help="backend API base URL (NX_CONSOLE_API_URL)"
    )
    return parser.parse_args(argv)


def child_environment(base: Mapping[str, str], api_url: str) -> dict[str, str]:
    """Return the environment for Streamlit: the API URL travels as a setting."""
    env = dict(base)
    env["NX_CONSOLE_API_URL"] = api_url
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    return env


def main(argv: Sequence[str] | None = None) -> None:
    """Replace this process with ``streamlit run`` so signals reach the server directly."""
    args = parse_args(argv, ConsoleSettings())
    command = streamlit_command(port=args.port, address=args.address)
    env = child_environment(os.environ, args.api_url)
    os.execve(command[0], command, env)  # noqa: S606 - we start our own interpreter on purpose
