"""``nx-sim``: the simulators' command line (``nx-sim demo``)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from simulators.broker import BrokerError
from simulators.demo import Demo, DemoUrls
from simulators.demo_config import DemoConfig, DemoError
from simulators.demo_tokens import ConsoleSignIn, console_line, token_lines
from simulators.planogram import PlanogramError
from simulators.processes import ChildFailedError
from simulators.scenario import ScenarioError, available, load_scenario

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("firmware_agent", "httpx", "backend")
STATUS_EVERY_S = 30.0
"""How often the running demo logs what the fleet has done."""

app = typer.Typer(help="NaloxNet simulators: virtual machines, a fleet, the demo.",
                  no_args_is_help=True)


class _Interrupted(BaseException):
    """A stop signal arrived while the demo was still starting."""


@app.callback()
def _root() -> None:
    """Run simulated NaloxNet machines."""


def _banner(urls: DemoUrls, machines: int) -> str:
    lines = [
        "",
        "NaloxNet demo is running.",
        console_line(urls.console, urls.console_role),
        f"  API docs  {urls.docs}",
        f"  API       {urls.api}/api/v1/machines",
        f"  broker    {urls.broker}",
        f"  logs      {urls.logs}",
        *([f"  webhooks  {urls.webhooks}  (every alert, signed; GET lists them)"]
          if urls.webhooks else []),
        *([f"  e-mail    {urls.mail}"] if urls.mail else []),
        *token_lines(urls.tokens),
        f"  {machines} simulated machines around Philadelphia. Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


@app.command()
def scenarios() -> None:
    """List the scenarios shipped with the simulators."""
    for name in available():
        typer.echo(f"{name:20} {load_scenario(name).description}")


@app.command()
def demo(
    machines: Annotated[int, typer.Option(min=1, max=500, help="simulated machines")] = 24,
    api_port: Annotated[int, typer.Option(min=1, max=65535, help="backend API port")] = 8000,
    console_port: Annotated[int, typer.Option(min=1, max=65535, help="console port")] = 8501,
    speed: Annotated[
        float, typer.Option(min=1.0, help="simulated seconds per real second")
    ] = 360.0,
    seed: Annotated[int, typer.Option(help="seed of the fleet layout and the demand")] = 2026,
    workdir: Annotated[
        Path, typer.Option(help="database, agent data and logs (wiped at start)")
    ] = Path("var/demo"),
    console: Annotated[bool, typer.Option(help="start the Streamlit console")] = True,
    heartbeat_s: Annotated[float, typer.Option(min=0.5, help="agent heartbeat period")] = 10.0,
    history_days: Annotated[
        float, typer.Option(min=0.0, max=60.0, help="simulated days replayed before the run")
    ] = 7.0,
    hotspots: Annotated[bool, typer.Option(help="run the hotspot scan every 30 s")] = True,
    scenario: Annotated[
        str,
        typer.Option(help="shipped scenario name or TOML file; 'none' for plain demand"),
    ] = "demo",
    console_role: Annotated[
        ConsoleSignIn,
        typer.Option(help="the role the console starts signed in as; 'none': its sign-in page"),
    ] = ConsoleSignIn.ADMIN,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every agent")] = False,
) -> None:
    """Run broker, backend, a simulated fleet and the console until Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if not verbose:
        # Twenty agents chatting at INFO would bury the banner; keep their warnings.
        for noisy in QUIET_LOGGERS:
            logging.getLogger(noisy).setLevel(logging.WARNING)
    config = DemoConfig(
        machines=machines,
        api_port=api_port,
        console_port=console_port,
        speed=speed,
        seed=seed,
        workdir=workdir,
        console=console,
        heartbeat_s=heartbeat_s,
        scenario=None if scenario.lower() == "none" else scenario,
        history_days=history_days,
        hotspots=hotspots,
        console_role=console_role.role(),
    )
    started = threading.Event()
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            return  # already shutting down; let it finish
        stopping.set()
        log.info("received %s; stopping", signal.Signals(signum).name)
        if not started.is_set():
            raise _Interrupted

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    runner = Demo(config)
    try:
        urls = runner.start()
        started.set()
        typer.echo(_banner(urls, machines))
        while not stopping.wait(STATUS_EVERY_S):
            if runner.fleet is not None:
                stats = runner.fleet.stats
                log.info(
                    "fleet: %d dispensed, %d refused, %d refills, simulated time %s",
                    stats.dispensed,
                    sum(stats.refused.values()),
                    stats.refills,
                    runner.fleet.now().strftime("%a %H:%M"),
                )
    except _Interrupted:
        log.info("stopped while starting")
    except (DemoError, ScenarioError, ChildFailedError, BrokerError, PlanogramError) as exc:
        typer.echo(f"nx-sim demo: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        stopping.set()
        runner.stop()


def main() -> None:
    """Run the ``nx-sim`` command line."""
    app()
