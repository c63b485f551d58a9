"""What the fleet can ask of one simulated machine, and how a scenario event becomes requests."""

from __future__ import annotations

from typing import Protocol

from firmware_agent.wire.payloads import VendResult
from simulators.scenario import BrokerOutage, Event, GoDark, HeatWave, Jams, Surge, Tamper


class Machine(Protocol):
    """What the fleet needs of one machine (``SimMachine`` in production)."""

    @property
    def machine_id(self) -> str:
        """Return the machine id."""
        ...

    def start(self) -> None:
        """Start the machine."""
        ...

    def vend(self, slot: int) -> VendResult:
        """Attempt a vend."""
        ...

    def refill(self) -> None:
        """Fill every slot."""
        ...

    def restock(self, slot: int, count: int) -> None:
        """Set one slot to ``count`` items, as a worker loading it does."""
        ...

    def set_temperature(self, celsius: float) -> None:
        """Make the cabinet read ``celsius``."""
        ...

    def set_door_open(self, is_open: bool) -> None:
        """Open or close the service door."""
        ...

    def jam(self, count: int) -> None:
        """Make the next ``count`` vends jam."""
        ...

    def set_dark(self, dark: bool) -> None:
        """Cut the machine off the network, or bring it back."""
        ...

    def settled(self) -> bool:
        """Return whether everything the machine reported has been taken over."""
        ...

    def stop(self) -> None:
        """Stop the machine."""
        ...


def live_through(machine: Machine, event: Event, *, begins: bool) -> None:
    """Make one machine live through the beginning or the end of a scenario event."""
    match event:
        case HeatWave():
            machine.set_temperature(event.celsius if begins else event.normal_c)
        case GoDark():
            machine.set_dark(begins)
        case Tamper():
            machine.set_door_open(begins)
        case Jams():
            if begins:
                machine.jam(event.count)
        case Surge() | BrokerOutage():
            pass  # demand follows the multiplier; the fleet handles the broker itself
