"""What ``nx-sim demo`` runs: its settings and the checks made before anything starts."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from backend.auth.principal import Role

DEFAULT_SCENARIO = "demo"
BACKEND_USER = "nx-backend"


class BrokerAddress(Protocol):
    """Where the broker listens (``MosquittoBroker`` has both)."""

    host: str
    port: int


@dataclass(frozen=True)
class DemoConfig:
    """What ``nx-sim demo`` runs; the defaults are a comfortable laptop demo."""

    machines: int = 24
    api_port: int = 8000
    console_port: int = 8501
    speed: float = 360.0
    seed: int = 2026
    workdir: Path = Path("var/demo")
    console: bool = True
    heartbeat_s: float = 10.0
    offline_timeout_s: float = 60.0
    """The backend calls a machine offline after this long without a heartbeat."""
    restock_after_h: float = 6.0
    """Only without the outreach team: the fleet refills a machine after a slot sat empty."""
    outreach_team: bool = True
    """The simulated team issues the backend's plan every simulated day and follows it."""
    team_shift_every_h: float = 24.0
    mean_per_day: float = 6.0
    history_days: float = 7.0
    """Simulated days replayed before the live run: the hotspot scan's baseline."""
    hotspots: bool = True
    """Run the backend's hotspot scan on a short schedule, on the data's own clock."""
    hotspot_interval_s: float = 30.0
    scenario: str | None = DEFAULT_SCENARIO
    """A shipped scenario name or a TOML path; None for plain demand."""
    console_role: Role | None = Role.ADMIN
    """The role whose token the console signs in with; None: it opens on its sign-in page."""


class DemoError(RuntimeError):
    """The demo cannot start; the message says what to change."""


def port_in_use(port: int) -> bool:
    """Return whether something already listens on ``port`` on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def check_ports(config: DemoConfig) -> None:
    """Refuse to start when a port the demo needs is taken, naming the option to change."""
    wanted = [("--api-port", config.api_port)]
    if config.console:
        wanted.append(("--console-port", config.console_port))
    if config.console and config.api_port == config.console_port:
        raise DemoError("--api-port and --console-port must differ")
    for option, port in wanted:
        if port_in_use(port):
            raise DemoError(f"port {port} is already in use; choose another with {option}")


def hotspot_env(config: DemoConfig) -> dict[str, str]:
    """Return the hotspot job's settings for a demo: quick runs on the simulated clock."""
    return {
        **data_clock_env(),
        "NX_HOTSPOT_INTERVAL_S": str(config.hotspot_interval_s),
        "NX_HOTSPOT_STUDY_DAYS": str(max(7, int(config.history_days) + 1)),
        # Fewer replicates than production: a run must finish well within the interval.
        "NX_HOTSPOT_REPLICATES": "199",
        "NX_HOTSPOT_WORKERS": "1",
    }


def data_clock_env() -> dict[str, str]:
    """Return the settings every backend process of a demo shares: the data's clock, the city.

    The fleet stamps simulated time, hours ahead of the wall's at the demo's speed:
    "now" for the scan, and the day the API's statistics end on (the map's heat
    layer, Trends), is the newest dispense. Days are Philadelphia's.
    """
    return {"NX_HOTSPOT_CLOCK": "data", "NX_HOTSPOT_TIMEZONE": "America/New_York"}


def backend_env(
    config: DemoConfig, broker: BrokerAddress, database_url: str, password: str
) -> dict[str, str]:
    """Return the environment of the backend's processes: our database and broker."""
    return {
        **os.environ,
        "NX_ENVIRONMENT": "development",
        "NX_DATABASE_URL": database_url,
        "NX_MQTT_HOST": broker.host,
        "NX_MQTT_PORT": str(broker.port),
        "NX_MQTT_USERNAME": BACKEND_USER,
        "NX_MQTT_PASSWORD": password,
        "NX_OFFLINE_TIMEOUT_S": str(config.offline_timeout_s),
        **data_clock_env(),
        # The fleet stamps simulated time: forecast from the newest dispense, often.
        "NX_FORECAST_CLOCK": "data",
        "NX_FORECAST_INTERVAL_S": "30",
    }
