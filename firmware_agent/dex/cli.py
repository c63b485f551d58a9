"""``nx-agent dex ...``: look at EVA-DTS audits from a file or a live DEX port.

``register`` only adds the sub-commands: the parser and the UCS link are
imported when a ``dex`` command runs, so ``nx-agent run`` with the nxlink
driver never loads the DEX stack (memory on the Pi; see docs/decisions.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firmware_agent.dex.audit import Audit

EXIT_BAD_INPUT = 2
PORT_READ_TIMEOUT_S = 0.05


def _emit(audit: Audit, source: str) -> None:
    document: dict[str, Any] = {"source": source, **audit.to_json_dict()}
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _fail(message: str) -> int:
    sys.stderr.write(f"nx-agent dex: {message}\n")
    return EXIT_BAD_INPUT


def _parse(args: argparse.Namespace) -> int:
    from firmware_agent.dex.parser import parse_audit

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror}")
    try:
        audit = parse_audit(data)
    except ValueError as exc:  # DexParseError, or a parser bug met on this file
        return _fail(f"{path}: {exc}")
    _emit(audit, str(path))
    return 0


def _read(args: argparse.Namespace) -> int:
    import serial  # only this command needs a port

    from firmware_agent.dex.link import DexLinkError, LinkTimings, UcsMaster
    from firmware_agent.dex.parser import parse_audit

    try:
        with serial.serial_for_url(
            args.port, baudrate=args.baudrate, timeout=PORT_READ_TIMEOUT_S, exclusive=True
        ) as port:
            raw = UcsMaster(port, timings=LinkTimings()).read_audit()
    except (serial.SerialException, OSError, ValueError) as exc:
        return _fail(f"cannot use {args.port}: {exc}")
    except DexLinkError as exc:
        return _fail(f"DEX read from {args.port} failed: {exc}")
    try:
        audit = parse_audit(raw)
    except ValueError as exc:  # DexParseError, or a parser bug met on this audit
        return _fail(f"audit from {args.port} unreadable: {exc}")
    _emit(audit, args.port)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dex`` command group to the ``nx-agent`` parser."""
    dex = subparsers.add_parser("dex", help="read and decode EVA-DTS audits")
    commands = dex.add_subparsers(dest="dex_command", required=True)
    parse = commands.add_parser("parse", help="print an audit file as JSON")
    parse.add_argument("file", help="an EVA-DTS audit file")
    parse.set_defaults(func=_parse)
    read = commands.add_parser("read", help="read an audit over DEX/UCS and print it as JSON")
    read.add_argument("port", help="serial device or pyserial URL of the DEX port")
    read.add_argument("--baudrate", type=int, default=9600)
    read.set_defaults(func=_read)
