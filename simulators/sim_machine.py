"""One simulated machine: a virtual controller on a pty and the real agent reading it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from firmware_agent.agent import Agent
from firmware_agent.config import AgentSettings
from firmware_agent.wire.payloads import VendResult
from simulators.fleet_plan import MachineSpec
from simulators.virtual_controller import VirtualController

log = logging.getLogger(__name__)


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
    ) -> None:
        self.spec = spec
        self._password = password
        self._mqtt = (mqtt_host, mqtt_port)
        self._data_dir = data_dir / spec.machine_id
        self._timings = timings
        self.controller: VirtualController | None = None
        self.agent: Agent | None = None

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
        self.agent = Agent(settings)
        self.agent.start()
        # A controller that senses its stock reports it at power-up, so the
        # agent's ledger starts from the machine's real counts, not from zero.
        self.controller.report_stock()

    def vend(self, slot: int) -> VendResult:
        """Have a visitor take an item from ``slot``."""
        if self.controller is None:
            raise RuntimeError(f"machine {self.machine_id} is not started")
        return self.controller.vend(slot)

    def refill(self) -> None:
        """Fill every slot to capacity, as an outreach visit does."""
        if self.controller is None:
            raise RuntimeError(f"machine {self.machine_id} is not started")
        for slot in self.spec.slots:
            self.controller.restock(slot.slot, slot.capacity)

    def stop(self) -> None:
        """Stop the agent first (it publishes nothing more), then close the pty."""
        if self.agent is not None:
            self.agent.stop()
            self.agent = None
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
