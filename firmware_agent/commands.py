"""Carry out commands from the ``cmd`` topic; every command gets a result, none crashes us."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from firmware_agent.drivers.base import CommandOutcome, ControllerDriver
from firmware_agent.wire.payloads import (
    AuthorizeVendCommand,
    Command,
    CommandResult,
    ConfigCommand,
    LockCommand,
    PayloadError,
    PlanogramCommand,
    StockRequestCommand,
    UnlockCommand,
    parse_command,
)

log = logging.getLogger(__name__)


def command_id_of(raw: bytes) -> str | None:
    """Best-effort command id of an invalid payload, so its sender still gets an answer."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("command_id") if isinstance(data, dict) else None
    if isinstance(value, str) and 1 <= len(value) <= 64:
        return value
    return None


@dataclass(slots=True)
class CommandHandler:
    """Dispatch one command to the driver and the agent's state."""

    driver: ControllerDriver
    apply_planogram: Callable[[PlanogramCommand], None]
    """Record a planogram in the ledger (and publish the new snapshot)."""
    publish_stock: Callable[[], None]
    set_heartbeat: Callable[[float], None]

    def handle(self, raw: bytes) -> CommandResult | None:
        """Return the result of the command in ``raw`` (None if it cannot even be answered)."""
        try:
            command = parse_command(raw)
        except PayloadError as exc:
            command_id = command_id_of(raw)
            log.warning("invalid command %s: %s", command_id or "(no id)", exc.reason)
            if command_id is None:
                return None
            return CommandResult(command_id=command_id, ok=False,
                                 error=f"invalid command: {exc.reason}"[:500])
        log.info("command %s: %s", command.command_id, command.kind)
        try:
            return self._run(command)
        except Exception as exc:
            log.exception("command %s failed unexpectedly", command.command_id)
            return CommandResult(command_id=command.command_id, ok=False,
                                 error=f"internal error: {type(exc).__name__}")

    def _run(self, command: Command) -> CommandResult:
        match command:
            case PlanogramCommand(slots=slots):
                self.apply_planogram(command)
                failures: dict[str, str] = {}
                for cfg in slots:
                    if failures:
                        # One slot unanswered: do not wait out a timeout per slot.
                        failures[str(cfg.slot)] = "not sent"
                        continue
                    outcome = self.driver.configure_slot(cfg.slot, cfg.product, cfg.capacity)
                    if not outcome.ok:
                        failures[str(cfg.slot)] = outcome.error or "failed"
                # The ledger holds the planogram even if the controller could not take it.
                return CommandResult(
                    command_id=command.command_id, ok=not failures,
                    error="controller refused some slots" if failures else None,
                    detail={"slots": len(slots), "controller_errors": failures},
                )
            case LockCommand() | UnlockCommand():
                return _result(command.command_id,
                               self.driver.lock(isinstance(command, LockCommand)))
            case StockRequestCommand():
                outcome = self.driver.request_stock()
                self.publish_stock()
                return _result(command.command_id, outcome)
            case AuthorizeVendCommand(slot=slot, ttl_s=ttl_s):
                return _result(command.command_id, self.driver.authorize_vend(slot, ttl_s))
            case ConfigCommand(heartbeat_s=heartbeat_s):
                if heartbeat_s is not None:
                    self.set_heartbeat(heartbeat_s)
                return CommandResult(command_id=command.command_id, ok=True,
                                     detail={"heartbeat_s": heartbeat_s})
        return CommandResult(command_id=command.command_id, ok=False, error="unsupported command")


def _result(command_id: str, outcome: CommandOutcome) -> CommandResult:
    return CommandResult(command_id=command_id, ok=outcome.ok, error=outcome.error)
