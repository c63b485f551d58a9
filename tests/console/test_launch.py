"""``nx-console``: the command line it builds, and a real launch answering HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from console.launch import APP_FILE, child_environment, parse_args, streamlit_command
from console.settings import ConsoleSettings
from simulators.broker import free_port
from tests.waiting import wait_until

STARTUP_S = 90.0  # Streamlit imports a lot; the machine is shared


def test_command_runs_the_app_headless_without_telemetry() -> None:
    command = streamlit_command(port=8765, address="127.0.0.1", python="/py")
    assert command[:5] == ["/py", "-m", "streamlit", "run", str(APP_FILE)]
    assert "--server.headless=true" in command
    assert "--server.port=8765" in command
    assert "--browser.gatherUsageStats=false" in command
    assert Path(command[4]).is_file()


def test_options_default_to_settings_and_api_url_reaches_the_child() -> None:
    defaults = ConsoleSettings(api_url="http://api.example:8000", port=9000)
    args = parse_args([], defaults)
    assert (args.port, args.api_url) == (9000, "http://api.example:8000")
    args = parse_args(["--port", "9100", "--api-url", "http://127.0.0.1:1"], defaults)
    assert args.port == 9100
    env = child_environment({"PATH": "/bin"}, args.api_url)
    assert env["NX_CONSOLE_API_URL"] == "http://127.0.0.1:1"
    assert env["PATH"] == "/bin"


def test_nx_console_serves_the_app(fake_api: str) -> None:
    port = free_port()
    exe = Path(sys.executable).with_name("nx-console")
    process = subprocess.Popen(
        [str(exe), "--port", str(port), "--api-url", fake_api],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")},
    )
    try:

        def healthy() -> bool:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                return httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).text == "ok"
            except httpx.HTTPError:
                return False

        wait_until(healthy, STARTUP_S, "the console to answer /_stcore/health")
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200
        assert "<div id=\"root\"" in page.text or "streamlit" in page.text.lower()
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()
    assert process.returncode is not None
