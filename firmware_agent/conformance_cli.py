"""``nx-agent conformance``: check a controller against docs/nxlink.md over its serial port.

``register`` only adds the command; the kit itself is imported when the
command runs, so ``nx-agent run`` never loads it (nor, for the DEX driver, anything
of nxlink).
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_FAILED = 1
EXIT_BAD_PORT = 2
READ_TIMEOUT_S = 0.02


def _run(args: argparse.Namespace) -> int:
    import serial

    from firmware_agent.nxlink.conformance import Timing, run_rules
    from firmware_agent.nxlink.probe import Probe

    timing = Timing(args.ack_timeout, args.tries, args.pause)
    try:
        port = serial.serial_for_url(args.port, baudrate=args.baudrate,
                                     timeout=READ_TIMEOUT_S, write_timeout=2.0,
                                     exclusive=True)
    except (serial.SerialException, OSError, ValueError) as exc:
        sys.stderr.write(f"nx-agent conformance: cannot open {args.port}: {exc}\n")
        return EXIT_BAD_PORT
    try:
        with port:
            results = run_rules(Probe(port), timing)
    except (serial.SerialException, OSError) as exc:
        sys.stderr.write(f"nx-agent conformance: {args.port} failed: {exc}\n")
        return EXIT_BAD_PORT
    if args.json:
        sys.stdout.write(json.dumps([
            {"rule": r.rule, "section": r.section, "passed": r.passed, "detail": r.detail}
            for r in results], indent=2) + "\n")
    else:
        for r in results:
            sys.stdout.write(f"{'PASS' if r.passed else 'FAIL'}  {r.rule:<22} "
                             f"§{r.section:<10} {r.detail}\n")
        failed = sum(not r.passed for r in results)
        sys.stdout.write(f"{len(results) - failed} of {len(results)} rules passed\n")
    return EXIT_FAILED if any(not r.passed for r in results) else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``conformance`` command to the ``nx-agent`` parser."""
    cmd = subparsers.add_parser(
        "conformance", help="check an nxlink controller against docs/nxlink.md",
        description="Play the agent on a controller's serial line and print pass/fail per "
                    "rule of docs/nxlink.md. Stop the agent first: the port is opened "
                    "exclusively.")
    cmd.add_argument("--port", required=True, help="serial device or pyserial URL")
    cmd.add_argument("--baudrate", type=int, default=115200)
    cmd.add_argument("--ack-timeout", type=float, default=0.5,
                     help="the controller's ACK timeout in seconds (spec: 0.5)")
    cmd.add_argument("--tries", type=int, default=5,
                     help="the controller's sends per round (spec: 5)")
    cmd.add_argument("--pause", type=float, default=2.0,
                     help="the controller's link-down pause in seconds (spec: 2)")
    cmd.add_argument("--json", action="store_true", help="print the results as JSON")
    cmd.set_defaults(func=_run)
