"""The nxlink driver: a serial port, the frame reader and the link state machine.

Reads run on the agent's controller thread; commands (``lock``, ``configure_slot``,
``request_stock``) may come from another thread and wait for their ACK, which
that reading thread delivers. The port is opened with pyserial's
``serial_for_url``, so a device path, a pseudo-terminal or a ``socket://`` URL
all work the same.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import serial

from firmware_agent.drivers.base import (
    Batch,
    CommandOutcome,
    ControllerDriver,
    DriverError,
    Hello,
    Observation,
    StockReport,
)
from firmware_agent.nxlink.link import Link, LinkTiming, Reception
from firmware_agent.nxlink.messages import (
    BOOT_MODULUS,
    EVENT_TYPES,
    PROTOCOL,
    Authorise,
    Command,
    Inventory,
    Lock,
    Message,
    MessageError,
    SlotConfig,
    Unlock,
    decode_message,
    message_fields,
    split_event_id,
)
from firmware_agent.nxlink.stock_parts import StockAssembler
from firmware_agent.wire.frames import Ack, Frame, FrameReader

log = logging.getLogger(__name__)

POLL_S = 0.02
"""Port read timeout: how long one read blocks when the line is quiet."""
MAX_BATCH = 512
"""Frames read before a batch is returned even if more are waiting."""
AGENT_FIRMWARE = "nx-agent-0.1"


class NxlinkDriver(ControllerDriver):
    """A controller that speaks nxlink."""

    name = "nxlink"

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 115200,
        timing: LinkTiming | None = None,
        boot_id: int = 0,
        command_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port_url = port
        self.baudrate = baudrate
        self.boot_counter = boot_id % BOOT_MODULUS
        self.command_timeout_s = command_timeout_s
        self._clock = clock
        self._link = Link(timing or LinkTiming())
        self._reader = FrameReader()
        self._stock = StockAssembler()
        self.peer_protocol = 1
        self._port: serial.Serial | None = None
        self._lock = threading.Lock()  # guards the link and port writes
        self._acked = threading.Condition(self._lock)
        self._failed: set[int] = set()
        self.bad_messages = 0
        self.events_without_id = 0
        """Events from a controller that announced protocol 2 but sent no event id."""

    # --- life cycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Open the port and say HELLO, so the controller resets its receive window."""
        try:
            # Exclusive: a second reader on the line (an agent started by hand
            # beside the service) would take and ACK frames this one never sees.
            self._port = serial.serial_for_url(
                self.port_url, baudrate=self.baudrate, timeout=POLL_S, write_timeout=2.0,
                exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DriverError(f"cannot open {self.port_url}: {exc}") from exc
        log.info("opened %s at %d baud", self.port_url, self.baudrate)
        with self._lock:
            self._submit(self._hello(), persistent=True)

    def _hello(self) -> Hello:
        return Hello(AGENT_FIRMWARE, 0, self.boot_counter, PROTOCOL)

    def close(self) -> None:
        """Close the port."""
        with self._lock:
            port, self._port = self._port, None
            self._acked.notify_all()
        if port is not None:
            port.close()

    def restore_state(self, state: str | None) -> None:
        """Resume the receive window stored with the last committed batch."""
        if state is None:
            return
        try:
            self._link.restore_rx_state(state)
            self._stock = StockAssembler.from_json(json.loads(state).get("stock"))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable nxlink state (%s); starting a fresh window", exc)

    # --- reading --------------------------------------------------------------------------

    def read(self, timeout_s: float) -> Batch:
        """Read what the controller sends within ``timeout_s``; new frames await ``commit``."""
        deadline = self._clock() + timeout_s
        batch = Batch(token=[])
        seqs: list[int] = batch.token  # type: ignore[assignment]
        while True:
            self._service()
            port = self._require_port()
            try:
                data = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError) as exc:
                raise DriverError(f"read from {self.port_url} failed: {exc}") from exc
            if data:
                self._handle(data, batch.observations, seqs)
            if len(seqs) >= MAX_BATCH:
                break
            if (seqs or batch.observations) and not port.in_waiting:
                break  # a whole burst: make it durable in one go
            if self._clock() >= deadline:
                break
        if seqs or batch.observations:
            batch.state = self._state(seqs)
        return batch

    def _state(self, seqs: list[int]) -> str:
        with self._lock:
            state = json.loads(self._link.rx_state(seqs))
            state["stock"] = self._stock.to_json()
        return json.dumps(state)

    def _handle(self, data: bytes, observations: list[Observation], seqs: list[int]) -> None:
        acks_now: list[bytes] = []
        with self._lock:
            for packet in self._reader.feed(data):
                if isinstance(packet, Ack):
                    if self._link.handle_ack(packet):
                        self._acked.notify_all()
                    continue
                self._on_frame(packet, observations, seqs, acks_now)
            if acks_now:
                self._write(b"".join(acks_now))

    def _on_frame(self, frame: Frame, observations: list[Observation], seqs: list[int],
                  acks_now: list[bytes]) -> None:
        try:
            core, event_id = split_event_id(frame)
            message: Message | None = decode_message(core)
        except MessageError as exc:
            message = event_id = None
            self.bad_messages += 1
            log.warning("controller sent an invalid frame #%d (%s); acknowledging and ignoring"
                        " it", frame.seq, exc)
        if isinstance(message, Hello):
            self.peer_protocol = message.protocol
            known = self._link.peer_boot
            if self._link.peer_booted(message.boot_counter):
                log.info("controller boot %d (was %s), protocol %d",
                         message.boot_counter, known, message.protocol)
                if known is not None:
                    # The rebooted controller forgot its old frames; ACKing them now
                    # could only collide with its new numbering.
                    seqs.clear()
                    self._stock.peer_restarted()
                self._submit(self._hello(), persistent=True)
        key = None if event_id is None else (event_id.boot, event_id.seq)
        reception = self._link.receive(frame, key)
        if reception is Reception.DUPLICATE:
            acks_now.extend(self._link.mark_handled([frame.seq]))
        elif reception is Reception.REPEAT:
            # Stored before the controller rebooted; ACK the new number, count it once.
            log.info("controller resent event %s as #%d; already stored", event_id, frame.seq)
            seqs.append(frame.seq)
        elif reception is Reception.NEW:
            seqs.append(frame.seq)
            if (event_id is None and self.peer_protocol >= PROTOCOL
                    and frame.type in EVENT_TYPES and message is not None):
                # Counted as usual, but a reboot could count it twice (docs/nxlink.md 5).
                self.events_without_id += 1
                log.warning("controller announced protocol %d but event #%d (%s) has no"
                            " event id", self.peer_protocol, frame.seq, frame.type)
            if isinstance(message, StockReport):
                whole = self._stock.add(message, frame.seq, event_id)
                if whole is not None:
                    observations.append(whole)
            elif message is not None and not isinstance(message, Command):
                observations.append(message)

    def commit(self, batch: Batch) -> None:
        """ACK the frames of ``batch``: they are durable now."""
        seqs = batch.token if isinstance(batch.token, list) else []
        with self._lock:
            acks = self._link.mark_handled(seqs)
            if acks:
                self._write(b"".join(acks))

    def discard(self, batch: Batch) -> None:
        """Forget the batch unACKed; the controller will resend it."""
        seqs = batch.token if isinstance(batch.token, list) else []
        with self._lock:
            self._link.abandon(seqs)

    def counters(self) -> dict[str, int]:
        """Link error counters for telemetry."""
        with self._lock:
            return {
                **self._link.counters.as_dict(),
                "bad_frames": self._reader.bad_frames,
                "noise_bytes": self._reader.noise_bytes,
                "bad_messages": self.bad_messages,
                "events_without_id": self.events_without_id,
            }

    # --- commands -------------------------------------------------------------------------

    def request_stock(self) -> CommandOutcome:
        """Send INV; the STOCK answer arrives later as a StockReport."""
        return self._command(Inventory())

    def lock(self, locked: bool) -> CommandOutcome:
        """Send LOCK or UNLOCK."""
        return self._command(Lock() if locked else Unlock())

    def configure_slot(self, slot: int, product: str, capacity: int) -> CommandOutcome:
        """Send CFG for one slot."""
        return self._command(SlotConfig(slot, product, capacity))

    def authorize_vend(self, slot: int, ttl_s: int) -> CommandOutcome:
        """Send AUTH; the ACK is the answer (a machine that does not gate ACKs and ignores it)."""
        return self._command(Authorise(slot, ttl_s))

    def _command(self, message: Command) -> CommandOutcome:
        deadline = self._clock() + self.command_timeout_s
        with self._lock:
            try:
                seq = self._submit(message, persistent=False)
            except (MessageError, DriverError) as exc:
                return CommandOutcome(ok=False, error=str(exc))
            while self._link.is_outstanding(seq):
                if seq in self._failed or self._port is None:
                    break
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._acked.wait(min(remaining, 0.1))
            if self._link.is_outstanding(seq) or seq in self._failed or self._port is None:
                # Never let a command reported as failed go out later and take effect.
                self._link.cancel(seq)
                self._failed.discard(seq)
                return CommandOutcome(ok=False, error="controller did not acknowledge")
            return CommandOutcome(ok=True)

    # --- internals (called with the lock held, or from the reading thread) -------------------

    def _submit(self, message: Hello | Command, *, persistent: bool) -> int:
        kind, fields = message_fields(message)
        seq = self._link.submit(kind, fields, persistent=persistent)
        self._flush()
        return seq

    def _service(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if self._port is None:
            return
        due = self._link.due(self._clock())
        failed = self._link.take_failed()
        if failed:
            self._failed.update(failed)
            self._acked.notify_all()
        if due:
            self._write(b"".join(due))

    def _write(self, data: bytes) -> None:
        port = self._require_port()
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DriverError(f"write to {self.port_url} failed: {exc}") from exc

    def _require_port(self) -> serial.Serial:
        if self._port is None:
            raise DriverError("port is not open")
        return self._port
