"""The agent stands alone: no backend/console/simulator imports; deploy files are usable."""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from pathlib import Path

from firmware_agent.config import AgentSettings
from tests.agent.helpers import agent_environment, run_agent_cli

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "firmware_agent"
FORBIDDEN = {
    "backend", "console", "simulators", "tests", "fastapi", "sqlmodel", "sqlalchemy",
    "alembic", "streamlit", "numpy", "scipy", "pandas", "pydeck", "uvicorn", "typer",
    "httpx", "psycopg", "prometheus_client",
    # Memory on the Pi: pydantic-settings imports asyncio, argparse's providers,
    # python-dotenv and importlib.metadata, 2.6 MB the agent does not use
    # (docs/decisions.md); nothing else of the agent's brings asyncio in.
    "pydantic_settings", "asyncio", "dotenv",
}

NOT_ON_THE_RUN_PATH = {
    # The conformance kit is for controller makers (nx-agent conformance), not the Pi's run.
    "firmware_agent.nxlink.conformance", "firmware_agent.nxlink.probe",
}


def test_importing_and_building_the_agent_loads_no_heavy_packages(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from firmware_agent.agent import Agent\n"
        "from firmware_agent.cli import build_parser\n"
        "from firmware_agent.config import AgentSettings\n"
        "s = AgentSettings(machine_id='test-001', serial_port='loop://',"
        f" data_dir={str(tmp_path)!r})\n"
        "Agent(s).store.close()\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r}\n"
        f"             or m in {sorted(NOT_ON_THE_RUN_PATH)!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path, timeout=120)
    assert out.stdout.strip() == ""


def test_no_module_of_the_agent_imports_another_package() -> None:
    offenders = []
    for path in AGENT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_cli_rejects_a_bad_config_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('machine_id = "Not Valid"\n', encoding="utf-8")
    out = run_agent_cli("run", "--config", str(bad))
    assert out.returncode == 2
    assert "bad configuration" in out.stderr
    assert "machine_id" in out.stderr
    assert "Traceback" not in out.stderr
    not_json = run_agent_cli("run", env=agent_environment(NX_AGENT_MACHINE_ID="test-001",
                                                          NX_AGENT_DEX_SLOT_MAP="A1=1"))
    assert not_json.returncode == 2
    assert "bad configuration" in not_json.stderr
    assert "dex_slot_map" in not_json.stderr
    assert "Traceback" not in not_json.stderr
    # A value of the wrong type is reported by setting, never echoed: it may be a secret.
    leaky = tmp_path / "leaky.toml"
    leaky.write_text('machine_id = "test-001"\nmqtt_password = 86421357\nmqtt_port = "x"\n',
                     encoding="utf-8")
    wrong_type = run_agent_cli("run", "--config", str(leaky))
    assert wrong_type.returncode == 2
    assert "2 invalid setting(s)" in wrong_type.stderr
    assert "mqtt_password: Input should be a valid string" in wrong_type.stderr
    assert "mqtt_port:" in wrong_type.stderr
    assert "86421357" not in wrong_type.stderr
    missing = run_agent_cli("run", "--config", str(tmp_path / "no.toml"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_example_config_loads() -> None:
    settings = AgentSettings.load(AGENT / "deploy" / "agent.example.toml", environ={})
    assert settings.driver == "nxlink"
    assert settings.data_dir == Path("/var/lib/nx-agent")


def test_systemd_unit_runs_the_cli_with_the_documented_paths() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(AGENT / "deploy" / "nx-agent.service", encoding="utf-8")
    service = unit["Service"]
    assert service["ExecStart"].split()[1:] == ["run", "--config", "/etc/nx-agent/agent.toml"]
    assert service["ExecStart"].split()[0].endswith("/bin/nx-agent")
    assert service["StateDirectory"] == "nx-agent"  # /var/lib/nx-agent, the default data_dir
    assert service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    guide = (ROOT / "docs" / "agent-install.md").read_text(encoding="utf-8")
    assert "nx-agent.service" in guide
    assert "agent.example.toml" in guide


def test_cli_refuses_a_corrupt_store_without_touching_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    garbage = b"this is not a database" * 100
    (data / "agent.db").write_bytes(garbage)
    config = tmp_path / "agent.toml"
    config.write_text(f'machine_id = "test-001"\ndata_dir = "{data}"\n', encoding="utf-8")
    out = run_agent_cli("run", "--config", str(config))
    assert out.returncode == 2
    assert "cannot use the agent store" in out.stderr
    assert "Traceback" not in out.stderr
    assert (data / "agent.db").read_bytes() == garbage


def _modules_after_building(tmp_path: Path, driver: str) -> set[str]:
    """Build the agent as ``nx-agent run`` does and return the firmware_agent modules loaded."""
    code = (
        "import sys\n"
        "from firmware_agent.agent import Agent\n"
        "from firmware_agent.cli import build_parser\n"
        "from firmware_agent.config import AgentSettings\n"
        "build_parser()\n"
        f"s = AgentSettings(machine_id='test-001', serial_port='loop://', driver={driver!r},"
        f" data_dir={str(tmp_path)!r})\n"
        "Agent(s).store.close()\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('firmware_agent'))))\n"
    )
    tmp_path.mkdir()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path, timeout=120)
    return set(out.stdout.strip().split(","))


def test_each_driver_loads_only_its_own_stack(tmp_path: Path) -> None:
    # Memory on the Pi: the other driver's modules are never imported (docs/decisions.md).
    nxlink = _modules_after_building(tmp_path / "nxlink", "nxlink")
    assert "firmware_agent.drivers.nxlink" in nxlink
    assert not {m for m in nxlink if m.startswith("firmware_agent.dex.")} - {
        "firmware_agent.dex.cli"}
    assert "firmware_agent.drivers.dex" not in nxlink
    dex = _modules_after_building(tmp_path / "dex", "dex")
    assert "firmware_agent.drivers.dex" in dex
    assert "firmware_agent.dex.parser" in dex
    assert not {m for m in dex if m.startswith("firmware_agent.nxlink")}
    assert "firmware_agent.wire.frames" not in dex


def test_release_freed_heap_runs_on_glibc() -> None:
    import platform

    from firmware_agent.memory import release_freed_heap

    assert release_freed_heap() is (platform.libc_ver()[0] == "glibc")
