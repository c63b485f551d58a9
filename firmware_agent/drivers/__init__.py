"""Controller drivers: one per kind of vending controller, behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware_agent.drivers.base import ControllerDriver

if TYPE_CHECKING:
    from firmware_agent.config import AgentSettings


def make_driver(settings: AgentSettings, *, boot_id: int = 0) -> ControllerDriver:
    """Return the driver ``settings.driver`` names, not yet opened."""
    if settings.driver == "nxlink":
        from firmware_agent.drivers.nxlink import NxlinkDriver

        return NxlinkDriver(
            settings.serial_port,
            baudrate=settings.baudrate,
            timing=settings.link_timing,
            boot_id=boot_id,
            command_timeout_s=settings.command_timeout_s,
        )
    if settings.driver == "dex":
        from firmware_agent.drivers.dex import DexDriver

        return DexDriver.from_settings(settings)
    raise ValueError(f"unknown driver {settings.driver!r}")
