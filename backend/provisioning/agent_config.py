"""Render the agent's configuration file (TOML, read by ``nx-agent run --config``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_SERIAL_PORT = "/dev/ttyUSB0"
DEFAULT_DATA_DIR = "/var/lib/nx-agent"


@dataclass(frozen=True)
class AgentConfig:
    """What a machine needs to reach the broker as itself (``AgentSettings`` field names)."""

    machine_id: str
    mqtt_host: str
    mqtt_port: int
    mqtt_password: str | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    driver: str = "nxlink"
    serial_port: str = DEFAULT_SERIAL_PORT
    data_dir: str = DEFAULT_DATA_DIR


def toml_string(text: str) -> str:
    """Return ``text`` as a TOML basic string (quotes, backslash and controls escaped)."""
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _value(value: str | int | Path) -> str:
    return str(value) if isinstance(value, int) else toml_string(str(value))


def render_agent_toml(config: AgentConfig) -> str:
    """Return the TOML text of ``config`` with a header saying how to install it."""
    lines = [
        f"# NaloxNet agent configuration for machine {config.machine_id}.",
        "# Copy to the Pi (e.g. /etc/nx-agent/agent.toml, mode 0600, owned by the",
        "# agent's user) and run: nx-agent run --config /etc/nx-agent/agent.toml",
        "# It holds the machine's broker credential: do not commit or e-mail it.",
    ]
    fields: list[tuple[str, str | int | Path | None]] = [
        ("machine_id", config.machine_id),
        ("driver", config.driver),
        ("serial_port", config.serial_port),
        ("data_dir", config.data_dir),
        ("mqtt_host", config.mqtt_host),
        ("mqtt_port", config.mqtt_port),
        ("mqtt_username", config.machine_id),
        ("mqtt_password", config.mqtt_password),
        ("tls_ca_file", config.tls_ca_file),
        ("tls_cert_file", config.tls_cert_file),
        ("tls_key_file", config.tls_key_file),
    ]
    lines += [f"{name} = {_value(value)}" for name, value in fields if value is not None]
    return "\n".join(lines) + "\n"
