"""``nx-sim``: the simulators' command line (``nx-sim demo``)."""

from __future__ import annotations

import logging
import signal
import threading
from enum import StrEnum
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
                team = runner.team.stats if runner.team is not None else None
                log.info(
                    "fleet: %d dispensed, %d refused, %d refills, simulated time %s%s",
                    stats.dispensed,
                    sum(stats.refused.values()),
                    stats.refills,
                    runner.fleet.now().strftime("%a %H:%M"),
                    f"; outreach team: {team.plans} plans, {team.visits} visits"
                    if team is not None else "",
                )
    except _Interrupted:
        log.info("stopped while starting")
    except (DemoError, ScenarioError, ChildFailedError, BrokerError, PlanogramError) as exc:
        typer.echo(f"nx-sim demo: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        stopping.set()
        runner.stop()


class EvalPolicy(StrEnum):
    """The restock policies ``restock-eval`` compares (simulators/restock_policies.py)."""

    PLAN = "plan"
    WEEKLY = "weekly"
    WHEN_EMPTY = "when-empty"


@app.command("restock-eval")
def restock_eval(
    policy: Annotated[list[EvalPolicy] | None, typer.Option(
        help="policy to play; repeat for several (default: plan and weekly)")] = None,
    days: Annotated[int, typer.Option(min=1, max=365, help="simulated days")] = 28,
    machines: Annotated[int, typer.Option(min=1, max=500, help="simulated machines")] = 60,
    vans: Annotated[int, typer.Option(min=1, max=50, help="vans on the road")] = 1,
    per_day: Annotated[float, typer.Option(
        min=0.1, max=100, help="mean visitors per machine a day")] = 6.0,
    seed: Annotated[list[int] | None, typer.Option(
        help="seed of the city; repeat for several (figures add up)")] = None,
    out: Annotated[Path, typer.Option(help="where to write the figures as JSON")
                   ] = Path("bench-results/restock_eval.json"),
) -> None:
    """Play the simulated city under restock policies with the backend's forecast and planner."""
    # SciPy, OR-Tools and the backend's planner load only for this command.
    from simulators.restock_eval import evaluate, summary, write

    names = [p.value for p in policy or (EvalPolicy.PLAN, EvalPolicy.WEEKLY)]
    result = evaluate(names, machines=machines, days=days, vans=vans, seeds=seed or [1],
                      per_day=per_day)
    write(result, out)
    typer.echo(summary(result))
    typer.echo(f"written to {out}")


def main() -> None:
    """Run the ``nx-sim`` command line."""
    app()
