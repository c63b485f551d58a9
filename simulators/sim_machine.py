"""One simulated machine: a virtual controller on a pty and the real agent reading it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import SecretStr

from firmware_agent.agent import Agent
from firmware_agent.config import AgentSettings
from firmware_agent.wire.payloads import VendResult
from simulators.fleet_plan import MachineSpec
from simulators.virtual_controller import VirtualController

log = logging.getLogger(__name__)

LINK_UP_TIMEOUT_S = 15.0
LINK_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class AgentTimings:
    """Agent timings for simulated machines: shorter than a Pi's so the demo looks alive."""

    heartbeat_s: float = 10.0
    read_timeout_s: float = 0.2


class SimMachine:
    """A ``VirtualController`` and an in-process ``Agent`` connected to the broker."""

    def __init__(
        self,
        spec: MachineSpec,
        *,
        password: str,
        mqtt_host: str,
        mqtt_port: int,
        data_dir: Path,
        timings: AgentTimings = AgentTimings(),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.spec = spec
        self._password = password
        self._mqtt = (mqtt_host, mqtt_port)
        self._data_dir = data_dir / spec.machine_id
        self._timings = timings
        # The agent stamps device times from this clock: the fleet's simulated one.
        self._clock = clock
        self.controller: VirtualController | None = None
        self.agent: Agent | None = None
        self._settings: AgentSettings | None = None
        self._idle = threading.Event()  # never set: a sleep that is not time.sleep

    @property
    def machine_id(self) -> str:
        return self.spec.machine_id

    def start(self) -> None:
        """Open the controller's pty, then start the agent on it."""
        slots = {s.slot: (s.product, s.count, s.capacity) for s in self.spec.slots}
        self.controller = VirtualController(slots=slots)
        self.controller.start()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        settings = AgentSettings(
            machine_id=self.spec.machine_id,
            driver="nxlink",
            serial_port=self.controller.port,
            mqtt_host=self._mqtt[0],
            mqtt_port=self._mqtt[1],
            mqtt_password=SecretStr(self._password),
            data_dir=self._data_dir,
            heartbeat_s=self._timings.heartbeat_s,
            read_timeout_s=self._timings.read_timeout_s,
        )
        self._settings = settings
        self.agent = self._new_agent(settings)
        self.agent.start()
        # A controller that senses its stock reports it at power-up, so the
        # agent's ledger starts from the machine's real counts, not from zero.
        self.controller.report_stock()
        self._wait_link_up()

    def _wait_link_up(self) -> None:
        # Nobody walks up to a machine in the first instant after power-up; waiting
        # until the agent has acknowledged HELLO and STOCK keeps the start orderly.
        controller = self._controller()
        deadline = time.monotonic() + LINK_UP_TIMEOUT_S
        while controller.unacked and time.monotonic() < deadline:
            self._idle.wait(LINK_POLL_S)
        if controller.unacked:
            log.warning("%s: agent has not acknowledged the controller's greeting after %.0fs",
                        self.machine_id, LINK_UP_TIMEOUT_S)

    def _controller(self) -> VirtualController:
        if self.controller is None:
            raise RuntimeError(f"machine {self.machine_id} is not started")
        return self.controller

    def vend(self, slot: int) -> VendResult:
        """Have a visitor take an item from ``slot``."""
        return self._controller().vend(slot)

    def refill(self) -> None:
        """Fill every slot to capacity, as an outreach visit does."""
        controller = self._controller()
        for slot in self.spec.slots:
            controller.restock(slot.slot, slot.capacity)

    def restock(self, slot: int, count: int) -> None:
        """Set one slot to ``count`` items (service mode), as a worker loading it does."""
        self._controller().restock(slot, count)

    def set_temperature(self, celsius: float) -> None:
        """Make the cabinet read ``celsius``."""
        self._controller().set_temperature(celsius)

    def set_door_open(self, is_open: bool) -> None:
        """Open or close the service door."""
        controller = self._controller()
        if is_open:
            controller.open_door()
        else:
            controller.close_door()

    def jam(self, count: int) -> None:
        """Make the next ``count`` vends jam."""
        self._controller().jam_next(count)

    def set_dark(self, dark: bool) -> None:
        """Cut the Pi off (its agent stops) or bring it back (a new agent boot).

        The controller keeps vending meanwhile and holds its unacknowledged
        events, as real firmware does, so nothing sold in the dark is lost.
        """
        if dark:
            if self.agent is not None:
                self.agent.stop()
                self.agent = None
            return
        if self.agent is None and self._settings is not None:
            self.agent = self._new_agent(self._settings)
            self.agent.start()

    def _new_agent(self, settings: AgentSettings) -> Agent:
        return Agent(settings) if self._clock is None else Agent(settings, clock=self._clock)

    def settled(self) -> bool:
        """Return whether the agent has acknowledged everything the controller sent."""
        return self.controller is None or self.controller.unacked == 0

    def stop(self) -> None:
        """Stop the agent first (it publishes nothing more), then close the pty."""
        if self.agent is not None:
            self.agent.stop()
            self.agent = None
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
