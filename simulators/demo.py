"""The one-command demo: broker, database, backend, simulated fleet and console.

Everything runs on loopback with fresh random credentials. The broker, the
backend, the hotspot job and the console are child processes, each leading its
own process group; the fleet runs in this process. ``stop()`` takes it all down.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from sqlmodel import Session

from backend import crud
from backend.areas.store import replace_areas
from backend.auth.principal import Role
from backend.db import make_engine, migrate, session_scope
from backend.models import MachineListingUpdate, NotificationRoute
from backend.provisioning.passwords import new_password
from simulators.broker import MosquittoBroker
from simulators.demo_config import (
    BACKEND_USER,
    DEFAULT_SCENARIO,
    DemoConfig,
    backend_env,
    check_ports,
    hotspot_env,
)
from simulators.demo_tokens import create_demo_tokens
from simulators.fleet import Fleet, FleetSettings
from simulators.fleet_plan import MachineSpec, plan_fleet
from simulators.neighbourhood_cells import AREAS_FILE, demo_areas
from simulators.notify_sinks import MailSink, WebhookInbox
from simulators.outreach_team import OutreachTeam, TeamSettings
from simulators.planogram import push_planograms
from simulators.processes import Child, entry_point
from simulators.scenario import Scenario, ScenarioError, load_scenario
from simulators.sim_machine import AgentTimings, SimMachine

log = logging.getLogger(__name__)

API_START_S = 90.0
CONSOLE_START_S = 120.0
TEAM_HTTP_TIMEOUT_S = 60.0
"""A plan over the fleet takes a second or two; the backend may be busy replaying history."""
"""Start-up deadlines: generous, a laptop may be importing pandas for the first time."""


@dataclass
class DemoUrls:
    api: str
    docs: str
    console: str | None
    broker: str
    logs: Path
    tokens: dict[Role, str] = field(default_factory=dict)
    """One API token per role, made for this run."""
    console_role: Role | None = None
    """The role the console is signed in as (None: it opens on its sign-in page)."""
    webhooks: str | None = None
    """The demo's webhook inbox: every alert is posted there, signed (GET lists them)."""
    mail: str | None = None
    """The demo's SMTP sink: critical alerts are mailed there (logged, not sent)."""


@dataclass
class Demo:
    """Start and stop the whole system for a demo."""

    config: DemoConfig
    specs: list[MachineSpec] = field(default_factory=list)
    broker: MosquittoBroker | None = None
    backend: Child | None = None
    console: Child | None = None
    hotspot_job: Child | None = None
    fleet: Fleet | None = None
    inbox: WebhookInbox | None = None
    mail: MailSink | None = None
    team: OutreachTeam | None = None
    team_client: httpx.Client | None = None

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
        scenario = self._scenario()
        workdir = cfg.workdir.resolve()
        # The demo owns this directory: a fresh database and broker every run.
        shutil.rmtree(workdir, ignore_errors=True)
        (workdir / "logs").mkdir(parents=True)
        passwords = {spec.machine_id: new_password() for spec in self.specs}
        backend_password = new_password()

        # The broker's directory stays under the system temp dir: the mosquitto
        # user it drops to may not be able to reach a home directory.
        broker = MosquittoBroker({BACKEND_USER: backend_password, **passwords}, own_session=True)
        self.broker = broker
        broker.start()
        database_url = f"sqlite:///{workdir / 'naloxnet.db'}"
        migrate(database_url)
        self._register(database_url)
        tokens = self._tokens(database_url)
        console_role = cfg.console_role
        notify_env = self._start_sinks(database_url, workdir, cfg.console_port)

        env = {**backend_env(cfg, broker, database_url, backend_password), **notify_env}
        api_url = self._start_backend(env, workdir)
        # The console comes up while the fleet replays its history, so the map
        # shows stock moving from the first minute.
        console_url = self._start_console(
            api_url, workdir, tokens[console_role] if console_role else None
        )
        self._start_fleet(broker, passwords, backend_password, scenario, workdir)
        if cfg.outreach_team:
            self._start_team(api_url, tokens[Role.OUTREACH])
        if cfg.hotspots:
            self.hotspot_job = Child(
                "hotspot-job",
                [entry_point("nx-backend"), "hotspots", "job"],
                {**env, **hotspot_env(cfg)},
                workdir / "logs" / "hotspots.log",
            )
        if self.console is not None and console_url is not None:
            self.console.wait_http(f"{console_url}/_stcore/health", CONSOLE_START_S, expect="ok")
        return DemoUrls(
            api=api_url,
            docs=f"{api_url}/docs",
            console=console_url,
            broker=f"mqtt://{broker.host}:{broker.port}",
            logs=workdir / "logs",
            tokens=tokens,
            console_role=console_role if self.console is not None else None,
            webhooks=self.inbox.url if self.inbox is not None else None,
            mail=(f"smtp://127.0.0.1:{self.mail.port} (logged to {self.mail.log_file})"
                  if self.mail is not None else None),
        )

    def _scenario(self) -> Scenario | None:
        name = self.config.scenario
        if not name:
            return None
        scenario = load_scenario(name)
        try:
            scenario.check_targets(self.specs)  # refuse before starting anything
        except ScenarioError as exc:
            if name != DEFAULT_SCENARIO:
                raise
            # The default story is written for the default fleet; a smaller
            # fleet just lives through the parts that concern it.
            log.warning("%s; those events will touch nothing", exc)
        return scenario

    def _register(self, database_url: str) -> None:
        engine = make_engine(database_url)
        try:
            with session_scope(engine) as session:
                # The city's areas first, so each machine is placed as it is registered.
                replace_areas(session, demo_areas(), actor="demo", source=AREAS_FILE.name)
                for spec in self.specs:
                    crud.register_machine(
                        session=session,
                        machine_id=spec.machine_id,
                        name=spec.name,
                        actor="demo",
                        lat=spec.lat,
                        lon=spec.lon,
                        site=spec.site,
                        slots=[slot.as_registration() for slot in spec.slots],
                    )
                    # Listed in the public feed (/public/v1/machines) under the same name.
                    crud.update_public_listing(
                        session=session, machine_id=spec.machine_id,
                        changes=MachineListingUpdate(public_name=spec.name, opening_hours="24/7"),
                        actor="demo",
                    )
        finally:
            engine.dispose()
        log.info("registered %d machines", len(self.specs))

    def _start_sinks(self, database_url: str, workdir: Path, console_port: int
                     ) -> dict[str, str]:
        """Start the webhook inbox and SMTP sink, route alerts to them; return the backend env."""
        self.inbox = WebhookInbox(workdir / "logs" / "webhooks.jsonl")
        self.inbox.start()
        routes = [NotificationRoute(name="demo-webhooks", channel="webhook",
                                    target=self.inbox.url, secret=self.inbox.secret)]
        env = {"NX_NOTIFY_CONSOLE_URL": f"http://127.0.0.1:{console_port}"}
        try:
            self.mail = MailSink(workdir / "logs" / "mail.log")
        except ImportError:
            log.warning("aiosmtpd is not installed: the demo sends no e-mail")
        if self.mail is not None:
            self.mail.start()
            routes.append(NotificationRoute(name="demo-mail", channel="email",
                                            target="outreach-lead@demo.invalid",
                                            min_severity="critical"))
            env.update({"NX_NOTIFY_SMTP_HOST": "127.0.0.1",
                        "NX_NOTIFY_SMTP_PORT": str(self.mail.port),
                        "NX_NOTIFY_SMTP_SECURITY": "none",
                        "NX_NOTIFY_SMTP_FROM": "naloxnet-demo@demo.invalid"})
        engine = make_engine(database_url)
        try:
            with session_scope(engine) as session:
                session.add_all(routes)
        finally:
            engine.dispose()
        return env

    def _tokens(self, database_url: str) -> dict[Role, str]:
        # The API refuses callers without a token: one per role to try each, and
        # the console signs in as admin by default so the demo shows everything.
        engine = make_engine(database_url)
        try:
            with Session(engine) as session:
                return create_demo_tokens(session)
        finally:
            engine.dispose()

    def _start_backend(self, env: dict[str, str], workdir: Path) -> str:
        port = str(self.config.api_port)
        self.backend = Child(
            "backend",
            # With the demo's own scan (every 30 s, below) the API's hourly one would be a
            # second scanner on the same alerts.
            [entry_point("nx-backend"), "serve", "--host", "127.0.0.1", "--port", port,
             *(["--no-hotspots"] if self.config.hotspots else [])],
            env,
            workdir / "logs" / "backend.log",
        )
        api_url = f"http://127.0.0.1:{port}"
        self.backend.wait_http(f"{api_url}/healthz", API_START_S)
        return api_url

    def _start_console(self, api_url: str, workdir: Path, token: str | None) -> str | None:
        if not self.config.console:
            return None
        port = str(self.config.console_port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NX_")}
        if token is not None:
            # A preset token: every browser session of the demo console starts signed in.
            env["NX_CONSOLE_API_TOKEN"] = token
        self.console = Child(
            "console",
            [entry_point("nx-console"), "--port", port, "--api-url", api_url],
            env,
            workdir / "logs" / "console.log",
        )
        return f"http://127.0.0.1:{port}"

    def _start_fleet(
        self,
        broker: MosquittoBroker,
        passwords: dict[str, str],
        backend_password: str,
        scenario: Scenario | None,
        workdir: Path,
    ) -> None:
        cfg = self.config
        self.fleet = fleet = Fleet(
            self.specs,
            lambda spec: SimMachine(
                spec,
                password=passwords[spec.machine_id],
                mqtt_host=broker.host,
                mqtt_port=broker.port,
                data_dir=workdir / "agents",
                timings=AgentTimings(heartbeat_s=cfg.heartbeat_s),
                clock=lambda: fleet.now(),
            ),
            FleetSettings(
                speed=cfg.speed,
                seed=cfg.seed,
                # The team follows the plan; without it the fleet refills empty machines.
                restock_after=None if cfg.outreach_team else timedelta(
                    hours=cfg.restock_after_h),
                history=timedelta(days=cfg.history_days),
            ),
            scenario=scenario,
            check_targets=False,
            broker_control=lambda down: _switch_broker(broker, down=down),
        )
        fleet.start_machines()
        # Agents name products only once they hold a planogram: send it before any vend.
        push_planograms(
            self.specs,
            host=broker.host,
            port=broker.port,
            username=BACKEND_USER,
            password=backend_password,
        )
        fleet.start()

    def _start_team(self, api_url: str, token: str) -> None:
        """Start the outreach team: it plans through the API as the outreach role."""
        if self.fleet is None:
            return
        depot = (sum(s.lat for s in self.specs) / len(self.specs),
                 sum(s.lon for s in self.specs) / len(self.specs))
        self.team_client = httpx.Client(base_url=api_url, timeout=TEAM_HTTP_TIMEOUT_S,
                                        headers={"Authorization": f"Bearer {token}"})
        self.team = OutreachTeam(self.fleet, self.team_client, TeamSettings(
            depot=depot, shift_every=timedelta(hours=self.config.team_shift_every_h)))
        self.team.start()

    def child_pids(self) -> list[int]:
        """Return the pids of the processes the demo started."""
        pids = [c.pid for c in (self.backend, self.console, self.hotspot_job) if c is not None]
        if self.broker is not None and self.broker.pid is not None:
            pids.append(self.broker.pid)
        return pids

    def stop(self) -> None:
        """Stop everything, the most dependent part first; safe to call twice."""
        started = time.monotonic()
        parts = (self.console, self.hotspot_job, self.team, self.fleet, self.backend,
                 self.broker, self.inbox, self.mail)
        if all(part is None for part in parts):
            return
        if self.team is not None:
            self.team.stop()
            self.team = None
        if self.team_client is not None:
            self.team_client.close()
            self.team_client = None
        if self.console is not None:
            self.console.stop()
            self.console = None
        if self.hotspot_job is not None:
            self.hotspot_job.stop()
            self.hotspot_job = None
        if self.fleet is not None:
            self.fleet.stop()
            self.fleet = None
        if self.backend is not None:
            self.backend.stop()
            self.backend = None
        if self.broker is not None:
            self.broker.cleanup()
            self.broker = None
        if self.mail is not None:
            self.mail.stop()
            self.mail = None
        if self.inbox is not None:
            self.inbox.stop()
            self.inbox = None
        log.info("demo stopped in %.1fs", time.monotonic() - started)


def _switch_broker(broker: MosquittoBroker, *, down: bool) -> None:
    """Stop the broker (it saves its persistence) or start it again on the same port."""
    if down:
        broker.stop()
    else:
        broker.start()
