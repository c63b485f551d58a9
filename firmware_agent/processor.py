"""Turn controller observations into MQTT messages and ledger changes (pure; clock passed in).

The processor owns the per-machine event ``seq`` (which survives restarts
through ``state()``), the stock ledger and what the heartbeat reports. It
does no I/O: the agent stores what it returns, together with ``state()``,
in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from firmware_agent.drivers.base import (
    Door,
    Fault,
    Hello,
    Key,
    Observation,
    Restock,
    StockReport,
    Temperature,
    Vend,
)
from firmware_agent.ledger import Ledger
from firmware_agent.store import Kind, OutMessage
from firmware_agent.wire.payloads import (
    CommandResult,
    DoorEvent,
    DoorState,
    FaultEvent,
    KeyEvent,
    RestockEvent,
    SlotConfig,
    Telemetry,
    TemperatureEvent,
    VendEvent,
)
from firmware_agent.wire.topics import Channel, machine_topic

log = logging.getLogger(__name__)

STORAGE_MIN_C = 15.0
STORAGE_MAX_C = 25.0
"""Naloxone's labelled storage range; readings outside it are an excursion."""

STATE_SEQ = "next_seq"
STATE_LEDGER = "ledger"


@dataclass(slots=True)
class Processor:
    """Everything the agent knows about its machine, and the messages it produces."""

    machine_id: str
    boot_id: int
    source: str = "nxlink"
    next_seq: int = 0
    ledger: Ledger = field(default_factory=Ledger)
    firmware: str | None = None
    controller_boot: int | None = None
    temperature_c: float | None = None
    door: DoorState | None = None
    _excursion: bool = False

    def topic(self, channel: Channel) -> str:
        """Return this machine's topic on ``channel``."""
        return machine_topic(self.machine_id, channel)

    def _seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def state(self) -> dict[str, str]:
        """Return what must be stored with the messages of the last ``process`` call."""
        return {STATE_SEQ: str(self.next_seq), STATE_LEDGER: self.ledger.to_json()}

    def restore_state(self, state: dict[str, str]) -> None:
        """Go back to what ``state()`` returned (after a batch that could not be stored)."""
        self.next_seq = int(state[STATE_SEQ])
        self.ledger = Ledger.from_json(state[STATE_LEDGER])

    def process(self, observations: list[Observation], now: datetime) -> list[OutMessage]:
        """Return the messages for ``observations``, with one stock snapshot if stock changed."""
        revision = self.ledger.revision
        out: list[OutMessage] = []
        for obs in observations:
            out.extend(self._one(obs, now))
        if self.ledger.revision != revision:
            out.append(self.stock_message(now))
        return out

    def _event(self, payload: bytes, kind: Kind) -> OutMessage:
        return OutMessage(self.topic(Channel.EVENTS), payload, qos=1, kind=kind)

    def _one(self, obs: Observation, now: datetime) -> list[OutMessage]:
        ids = {"machine_id": self.machine_id, "boot_id": self.boot_id, "device_time": now}
        match obs:
            case Hello(firmware, slot_count, boot_counter):
                if (firmware, boot_counter) != (self.firmware, self.controller_boot):
                    log.info("controller firmware %s, %d slots, boot %d",
                             firmware, slot_count, boot_counter)
                self.firmware, self.controller_boot = firmware, boot_counter
                return []
            case Vend(slot, result, drop_confirmed, product):
                event = VendEvent(
                    **ids, seq=self._seq(), slot=slot, result=result,
                    product=product or self.ledger.product(slot),
                    drop_confirmed=drop_confirmed, source=self.source,
                )
                if result.value == "ok":
                    self.ledger.vend(slot)
                return [self._event(event.to_bytes(), Kind.VITAL)]
            case Restock(slot, count):
                self.ledger.restock(slot, count)
                restock = RestockEvent(**ids, seq=self._seq(), slot=slot, count=count)
                return [self._event(restock.to_bytes(), Kind.VITAL)]
            case StockReport(counts):
                for gap in self.ledger.reconcile(counts):
                    log.warning("slot %d: controller counts %d, ledger had %d; taking %d",
                                gap.slot, gap.reported, gap.expected, gap.reported)
                return []
            case Door(state):
                self.door = state
                door = DoorEvent(**ids, seq=self._seq(), state=state)
                return [self._event(door.to_bytes(), Kind.EVENT)]
            case Temperature(celsius):
                return self._temperature(celsius, ids)
            case Fault(code, slot):
                fault = FaultEvent(**ids, seq=self._seq(), code=code, slot=slot)
                return [self._event(fault.to_bytes(), Kind.EVENT)]
            case Key(code):
                key = KeyEvent(**ids, seq=self._seq(), code=code)
                return [self._event(key.to_bytes(), Kind.EVENT)]
        log.warning("ignoring unknown observation %r", obs)
        return []

    def _temperature(self, celsius: float, ids: dict[str, object]) -> list[OutMessage]:
        self.temperature_c = celsius
        excursion = not STORAGE_MIN_C <= celsius <= STORAGE_MAX_C
        if excursion == self._excursion:
            return []
        # Only crossings are events; the heartbeat carries every reading.
        self._excursion = excursion
        event = TemperatureEvent(**ids, seq=self._seq(), celsius=celsius,
                                 excursion=excursion)
        return [self._event(event.to_bytes(), Kind.EVENT)]

    def stock_message(self, now: datetime) -> OutMessage:
        """Return the retained full stock snapshot."""
        snapshot = self.ledger.snapshot(self.machine_id, self.boot_id, now)
        return OutMessage(self.topic(Channel.STOCK), snapshot.to_bytes(), qos=1, retain=True,
                          kind=Kind.STATE, coalesce_key="stock")

    def apply_planogram(self, slots: tuple[SlotConfig, ...], now: datetime) -> list[OutMessage]:
        """Record a planogram in the ledger and return the new snapshot."""
        for cfg in slots:
            self.ledger.configure(cfg.slot, cfg.product, cfg.capacity)
        return [self.stock_message(now)]

    def telemetry_message(
        self, now: datetime, *, uptime_s: float, outbox_depth: int, link: dict[str, int]
    ) -> OutMessage:
        """Return a heartbeat; only the newest unsent one is kept."""
        telemetry = Telemetry(
            machine_id=self.machine_id, boot_id=self.boot_id, device_time=now,
            uptime_s=uptime_s, temperature_c=self.temperature_c, door=self.door,
            firmware=self.firmware, outbox_depth=outbox_depth, link=link,
        )
        return OutMessage(self.topic(Channel.TELEMETRY), telemetry.to_bytes(), qos=1,
                          kind=Kind.STATE, coalesce_key="telemetry")

    def result_message(self, result: CommandResult) -> OutMessage:
        """Return a command result for ``cmd/result``."""
        return OutMessage(self.topic(Channel.CMD_RESULT), result.to_bytes(), qos=1,
                          kind=Kind.RESULT)
