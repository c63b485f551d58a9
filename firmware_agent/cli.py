"""``nx-agent``: the agent's command line (argparse only, so the Pi needs nothing extra)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from firmware_agent import conformance_cli
from firmware_agent.config import AgentSettings, ConfigError
from firmware_agent.dex import cli as dex_cli

log = logging.getLogger("firmware_agent.cli")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def describe_invalid_settings(exc: ValidationError) -> str:
    """Say what is wrong with each setting, without echoing values (one may be a password)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"  {where}: {error['msg']}")
    return f"{exc.error_count()} invalid setting(s):\n" + "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = AgentSettings.load(args.config)
    except ConfigError as exc:
        print(f"nx-agent: bad configuration: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"nx-agent: bad configuration: {describe_invalid_settings(exc)}", file=sys.stderr)
        return 2
    from firmware_agent.agent import Agent
    from firmware_agent.instance_lock import DataDirError
    from firmware_agent.memory import release_freed_heap
    from firmware_agent.store import StoreError
    from firmware_agent.uplink import UplinkConfigError

    try:
        agent = Agent(settings)
    except UplinkConfigError as exc:
        print(f"nx-agent: bad configuration: {exc}", file=sys.stderr)
        return 2
    except (StoreError, DataDirError) as exc:
        print(f"nx-agent: {exc}", file=sys.stderr)
        return 2
    # Everything is imported and built now (the driver's modules too); what
    # start-up freed would otherwise stay resident for the life of the process.
    release_freed_heap()
    agent.run_forever()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the ``nx-agent`` argument parser."""
    parser = argparse.ArgumentParser(prog="nx-agent", description="NaloxNet machine agent.")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent until SIGTERM")
    run.add_argument("--config", help="TOML settings file (NX_AGENT_* variables override it)")
    run.set_defaults(func=_run)
    dex_cli.register(sub)
    conformance_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nx-agent`` command line."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
