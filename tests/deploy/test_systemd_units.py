"""The shipped systemd units: they parse, run commands that exist, and say what docs/deploy.md says.

``systemd-analyze verify`` (where installed; it needs no running systemd)
loads each unit as systemd would, with the install prefix rewritten to this
checkout's venv so that it can also check each ExecStart is executable. Apart
from that the units are read here line by line (a unit may repeat a key, such
as EnvironmentFile=, which configparser does not allow) and checked against
pyproject's console scripts, the CLI's commands and options, the production
mosquitto.conf's writable paths, backend/config.py's settings, and the
deployment guide.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from backend.cli import app
from backend.config import Settings
from backend.forecast.settings import ForecastSettings
from backend.hotspots.settings import HotspotSettings

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/opt/naloxnet/venv/bin/"
AGENT_PREFIX = "/opt/nx-agent/venv/bin/"
BACKEND_UNITS = [ROOT / "backend" / "deploy" / "nx-backend.service",
                 ROOT / "backend" / "deploy" / "nx-ingest@.service"]
BROKER_UNIT = ROOT / "broker_config" / "nx-broker.service"
AGENT_UNIT = ROOT / "firmware_agent" / "deploy" / "nx-agent.service"
SERVICE_UNITS = [*BACKEND_UNITS, BROKER_UNIT]
ENV_EXAMPLE = ROOT / "backend" / "deploy" / "backend.env.example"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
MOSQUITTO_CONF = ROOT / "broker_config" / "mosquitto.conf"
UNIT_ONLY_VARIABLES = {"NX_SERVE_HOST", "NX_SERVE_PORT"}
"""Read by nx-backend.service's ExecStart line, not by the settings classes."""


Unit = dict[str, list[tuple[str, str]]]


def read_unit(path: Path) -> Unit:
    """Return section -> [(key, value)] in file order, repeated keys kept."""
    unit: Unit = {}
    section = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            unit.setdefault(section, [])
            continue
        assert section, f"{path.name}:{number}: a key before any section"
        assert "=" in line, f"{path.name}:{number}: not a key=value line"
        assert not line.endswith("\\"), f"{path.name}:{number}: no continuation lines here"
        key, value = line.split("=", 1)
        unit[section].append((key.strip(), value.strip()))
    return unit


def values(unit: Unit, section: str, key: str) -> list[str]:
    """Every value of ``key`` in ``section``."""
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: Unit, section: str, key: str) -> str:
    """The single value of ``key`` in ``section``."""
    found = values(unit, section, key)
    assert len(found) == 1, f"{key}= in [{section}]: {found}"
    return found[0]


def paths(unit: Unit, key: str) -> list[str]:
    """The paths of a path-list key, without the '-' (optional) prefix."""
    return [p.lstrip("-") for v in values(unit, "Service", key) for p in v.split()]


def console_scripts() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    scripts: dict[str, str] = pyproject["project"]["scripts"]
    return scripts


@pytest.mark.parametrize("path", [*SERVICE_UNITS, AGENT_UNIT], ids=lambda p: p.name)
def test_unit_parses_and_runs_a_console_script_or_mosquitto(path: Path) -> None:
    unit = read_unit(path)
    assert {"Unit", "Service", "Install"} <= set(unit)
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    if path == BROKER_UNIT:
        assert argv[:2] == ["/usr/sbin/mosquitto", "-c"]
        assert Path(argv[2]).name == MOSQUITTO_CONF.name
        return
    prefix = AGENT_PREFIX if path == AGENT_UNIT else PREFIX
    assert argv[0].startswith(prefix), argv
    assert argv[0].removeprefix(prefix) in console_scripts(), argv[0]


@pytest.mark.parametrize("path", BACKEND_UNITS, ids=lambda p: p.name)
def test_backend_unit_command_and_options_exist(path: Path) -> None:
    argv = shlex.split(one(read_unit(path), "Service", "ExecStart"))
    assert argv[0] == PREFIX + "nx-backend"
    command = argv[1]
    assert command in get_command(app).commands  # type: ignore[attr-defined]
    # The command's own help lists every option the unit passes.
    shown = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for option in (a for a in argv[2:] if a.startswith("--")):
        assert option in shown.output, f"{path.name}: {command} has no {option}"


@pytest.mark.parametrize("path", SERVICE_UNITS, ids=lambda p: p.name)
def test_service_unit_is_hardened_and_restarts_on_failure(path: Path) -> None:
    unit = read_unit(path)
    service = dict(unit["Service"])
    assert service.get("User") or service.get("DynamicUser") == "yes"
    assert service.get("User") != "root"
    for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                      ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                      ("Restart", "on-failure"), ("CapabilityBoundingSet", "")):
        assert service.get(key) == want, f"{path.name}: {key}={service.get(key)!r}"
    assert paths(unit, "ReadWritePaths"), f"{path.name}: say what it may write"
    if path in BACKEND_UNITS:
        assert paths(unit, "EnvironmentFile")
        # Every writable path is the state directory systemd creates for it.
        state = [f"/var/lib/{d}" for d in paths(unit, "StateDirectory")]
        assert set(paths(unit, "ReadWritePaths")) <= set(state)


def _mosquitto_writes() -> list[Path]:
    """Files and directories the production mosquitto.conf writes to."""
    written: list[Path] = []
    for raw in MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines():
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] in ("persistence_location",):
            written.append(Path(words[1]))
        elif words[0] in ("pid_file", "plugin_opt_config_file"):
            written.append(Path(words[1]).parent)
        elif words[0] == "log_dest" and words[1] == "file":
            written.append(Path(words[2]).parent)
    return written


def test_broker_unit_lets_mosquitto_write_exactly_where_its_config_writes() -> None:
    unit = read_unit(BROKER_UNIT)
    writable = {Path(p) for p in paths(unit, "ReadWritePaths")}
    created = ({Path("/run") / d for d in paths(unit, "RuntimeDirectory")}
               | {Path("/var/lib") / d for d in paths(unit, "StateDirectory")}
               | {Path("/var/log") / d for d in paths(unit, "LogsDirectory")})
    written = _mosquitto_writes()
    assert len(written) == 4, written  # persistence, pid, dynamic-security file, log
    for target in written:
        assert any(target == w or w in target.parents for w in writable), target
        assert any(target == c or c in target.parents for c in created), target


def test_every_file_and_path_the_units_name_is_in_the_deployment_guide() -> None:
    guide = DEPLOY_DOC.read_text(encoding="utf-8")
    for path in SERVICE_UNITS:
        unit = read_unit(path)
        assert path.name in guide
        named = paths(unit, "EnvironmentFile") + paths(unit, "ReadWritePaths")
        argv = shlex.split(one(unit, "Service", "ExecStart"))
        named += [a for a in argv[1:] if a.startswith("/")]
        for one_path in named:
            assert one_path in guide, f"{path.name} names {one_path}; docs/deploy.md does not"


def test_environment_example_sets_only_real_settings() -> None:
    known = {f"NX_{name.upper()}" for name in Settings.model_fields}
    known |= {f"NX_HOTSPOT_{name.upper()}" for name in HotspotSettings.model_fields}
    known |= {f"NX_FORECAST_{name.upper()}" for name in ForecastSettings.model_fields}
    known |= UNIT_ONLY_VARIABLES
    assigned = re.findall(r"^#?(NX_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(encoding="utf-8"),
                          re.MULTILINE)
    assert len(assigned) >= 10
    assert set(assigned) <= known, set(assigned) - known
    # Production refuses the development broker password; the example must set one.
    assert "NX_ENVIRONMENT=production" in ENV_EXAMPLE.read_text(encoding="utf-8")
    assert ENV_EXAMPLE.name in DEPLOY_DOC.read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed on this machine")
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    # The units name the install prefix; point it at this venv so that verify also
    # checks each ExecStart is an executable it can find.
    bin_dir = str(Path(sys.executable).parent) + "/"
    copies = []
    for path in [*SERVICE_UNITS, AGENT_UNIT]:
        text = path.read_text(encoding="utf-8")
        text = text.replace(PREFIX, bin_dir).replace(AGENT_PREFIX, bin_dir)
        if path == BROKER_UNIT and not Path("/usr/sbin/mosquitto").exists():
            text = text.replace("/usr/sbin/mosquitto", "/bin/true")
        # A template is verified through an instance of it.
        name = path.name.replace("@.", "@0.")
        (tmp_path / name).write_text(text, encoding="utf-8")
        copies.append(str(tmp_path / name))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *copies],
                          capture_output=True, text=True, timeout=60, check=False)
    ours = [line for line in (done.stdout + done.stderr).splitlines()
            if any(Path(c).name.split("@")[0].removesuffix(".service") in line
                   for c in copies)]
    assert not ours, done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
