"""A start the settings make impossible fails with a clear message and leaves nothing behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from firmware_agent.agent import Agent
from firmware_agent.config import AgentSettings
from tests.agent.helpers import run_agent_cli


def test_unusable_tls_files_refuse_the_start_and_leave_nothing_behind(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from firmware_agent.uplink import UplinkConfigError

    now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    missing = AgentSettings(machine_id="test-001", serial_port="loop://", data_dir=tmp_path,
                            tls_ca_file=tmp_path / "no-ca.pem")
    with pytest.raises(UplinkConfigError, match=f"tls_ca_file {tmp_path / 'no-ca.pem'}: No such"):
        Agent(missing, clock=lambda: now)
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n", encoding="ascii")
    with pytest.raises(UplinkConfigError, match="TLS files not usable"):
        Agent(missing.model_copy(update={"tls_ca_file": garbage}), clock=lambda: now)
    # Neither refused start held the data dir or used up a boot id.
    agent = Agent(AgentSettings(machine_id="test-001", serial_port="loop://", data_dir=tmp_path),
                  clock=lambda: now)
    assert agent.boot_id == int(now.timestamp())
    agent.stop()


def run_with(tmp_path: Path, data_dir: Path, *lines: str) -> subprocess.CompletedProcess[str]:
    """Run ``nx-agent run`` on a loop:// port with ``data_dir`` and the TOML ``lines``."""
    config = tmp_path / "agent.toml"
    config.write_text("\n".join(['machine_id = "test-001"', 'serial_port = "loop://"',
                                 f'data_dir = "{data_dir}"', *lines]) + "\n", encoding="utf-8")
    return run_agent_cli("run", "--config", str(config))


def test_cli_reports_a_missing_tls_file_without_a_traceback(tmp_path: Path) -> None:
    out = run_with(tmp_path, tmp_path / "data", f'tls_ca_file = "{tmp_path / "ca.pem"}"')
    assert out.returncode == 2
    assert f"bad configuration: tls_ca_file {tmp_path / 'ca.pem'}: No such file" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_reports_a_data_dir_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir's parent should be\n", encoding="utf-8")
    out = run_with(tmp_path, blocker / "data")
    assert out.returncode == 2
    assert f"cannot use the data dir {blocker / 'data'}: Not a directory" in out.stderr
    assert "Traceback" not in out.stderr
