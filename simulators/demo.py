"""The one-command demo: broker, database, backend, simulated fleet and console.

Everything runs on loopback with fresh random credentials. The broker, the
backend and the console are child processes, each leading its own process
group; the fleet runs in this process. ``stop()`` takes it all down again.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from backend import crud
from backend.db import make_engine, migrate, session_scope
from backend.provisioning.passwords import new_password
from simulators.broker import MosquittoBroker
from simulators.fleet import Fleet, FleetSettings
from simulators.fleet_plan import MachineSpec, plan_fleet
from simulators.processes import Child, entry_point
from simulators.scenario import ScenarioError, load_scenario
from simulators.sim_machine import AgentTimings, SimMachine

log = logging.getLogger(__name__)

BACKEND_USER = "nx-backend"
DEFAULT_SCENARIO = "demo"
API_START_S = 90.0
CONSOLE_START_S = 120.0
"""Start-up deadlines: generous, a laptop may be importing pandas for the first time."""


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
    mean_per_day: float = 6.0
    scenario: str | None = DEFAULT_SCENARIO
    """A shipped scenario name or a TOML path; None for plain demand."""


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


@dataclass
class DemoUrls:
    api: str
    docs: str
    console: str | None
    broker: str
    logs: Path


@dataclass
class Demo:
    """Start and stop the whole system for a demo."""

    config: DemoConfig
    specs: list[MachineSpec] = field(default_factory=list)
    broker: MosquittoBroker | None = None
    backend: Child | None = None
    console: Child | None = None
    fleet: Fleet | None = None

    def start(self) -> DemoUrls:
        """Start every part in dependency order; on failure stop what started and re-raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> DemoUrls:
        cfg = self.config
        check_ports(cfg)
        self.specs = plan_fleet(cfg.machines, seed=cfg.seed, mean_per_day=cfg.mean_per_day)
        scenario = load_scenario(cfg.scenario) if cfg.scenario else None
        if scenario is not None:
            try:
                scenario.check_targets(self.specs)  # refuse before starting anything
            except ScenarioError as exc:
                if cfg.scenario != DEFAULT_SCENARIO:
                    raise
                # The default story is written for the default fleet; a smaller
                # fleet just lives through the parts that concern it.
                log.warning("%s; those events will touch nothing", exc)
        workdir = cfg.workdir.resolve()
        # The demo owns this directory: a fresh database and broker every run.
        shutil.rmtree(workdir, ignore_errors=True)
        (workdir / "logs").mkdir(parents=True)
        passwords = {spec.machine_id: new_password() for spec in self.specs}
        backend_password = new_password()

        # The broker's directory stays under the system temp dir: the mosquitto
        # user it drops to may not be able to reach a home directory.
        broker = MosquittoBroker({BACKEND_USER: backend_password, **passwords})
        self.broker = broker
        broker.start()
        database_url = f"sqlite:///{workdir / 'naloxnet.db'}"
        migrate(database_url)
        self._register(database_url)

        api_port = str(cfg.api_port)
        api_url = f"http://127.0.0.1:{api_port}"
        env = {
            **os.environ,
            "NX_ENVIRONMENT": "development",
            "NX_DATABASE_URL": database_url,
            "NX_MQTT_HOST": broker.host,
            "NX_MQTT_PORT": str(broker.port),
            "NX_MQTT_USERNAME": BACKEND_USER,
            "NX_MQTT_PASSWORD": backend_password,
            "NX_OFFLINE_TIMEOUT_S": str(cfg.offline_timeout_s),
        }
        self.backend = Child(
            "backend",
            [entry_point("nx-backend"), "serve", "--host", "127.0.0.1", "--port", api_port],
            env,
            workdir / "logs" / "backend.log",
        )
        self.backend.wait_http(f"{api_url}/healthz", API_START_S)

        self.fleet = Fleet(
            self.specs,
            lambda spec: SimMachine(
                spec,
                password=passwords[spec.machine_id],
                mqtt_host=broker.host,
                mqtt_port=broker.port,
                data_dir=workdir / "agents",
                timings=AgentTimings(heartbeat_s=cfg.heartbeat_s),
            ),
            FleetSettings(
                speed=cfg.speed,
                seed=cfg.seed,
                restock_after=timedelta(hours=cfg.restock_after_h),
            ),
            scenario=scenario,
            check_targets=False,
        )
        self.fleet.start()

        console_url: str | None = None
        if cfg.console:
            console_url = f"http://127.0.0.1:{cfg.console_port}"
            self.console = Child(
                "console",
                [
                    entry_point("nx-console"),
                    "--port",
                    str(cfg.console_port),
                    "--api-url",
                    api_url,
                ],
                {k: v for k, v in os.environ.items() if not k.startswith("NX_")},
                workdir / "logs" / "console.log",
            )
            self.console.wait_http(f"{console_url}/_stcore/health", CONSOLE_START_S, expect="ok")
        return DemoUrls(
            api=api_url,
            docs=f"{api_url}/docs",
            console=console_url,
            broker=f"mqtt://{broker.host}:{broker.port}",
            logs=workdir / "logs",
        )

    def _register(self, database_url: str) -> None:
        engine = make_engine(database_url)
        try:
            with session_scope(engine) as session:
                for spec in self.specs:
                    crud.register_machine(
                        session=session,
                        machine_id=spec.machine_id,
                        name=spec.name,
                        lat=spec.lat,
                        lon=spec.lon,
                        site=spec.site,
                        slots=[slot.as_registration() for slot in spec.slots],
                    )
        finally:
            engine.dispose()
        log.info("registered %d machines", len(self.specs))

    def child_pids(self) -> list[int]:
        """Return the pids of the processes the demo started."""
        pids = [c.pid for c in (self.backend, self.console) if c is not None]
        if self.broker is not None and self.broker.pid is not None:
            pids.append(self.broker.pid)
        return pids

    def stop(self) -> None:
        """Stop everything, the most dependent part first; safe to call twice."""
        started = time.monotonic()
        if self.console is not None:
            self.console.stop()
            self.console = None
        if self.fleet is not None:
            self.fleet.stop()
            self.fleet = None
        if self.backend is not None:
            self.backend.stop()
            self.backend = None
        if self.broker is not None:
            self.broker.cleanup()
            self.broker = None
        log.info("demo stopped in %.1fs", time.monotonic() - started)
