"""A vending controller that speaks nxlink on a pseudo-terminal, for tests and the demo.

``start()`` opens a pty and serves the link in a thread; ``port`` is the
slave device the agent opens with pyserial exactly as it would open
``/dev/ttyUSB0``. Like real firmware it keeps every event frame until the
agent ACKs it and retransmits on timeout. It can misbehave on request: noise
between frames, dropped bytes, duplicated frames, jams, door openings,
temperature swings and reboots.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable, Iterable, Mapping

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
from firmware_agent.nxlink.link import Link, LinkTiming, Reception
from firmware_agent.nxlink.messages import (
    PROTOCOL,
    Authorise,
    EventId,
    Inventory,
    Lock,
    MessageError,
    SlotConfig,
    Unlock,
    decode_message,
    message_fields,
)
from firmware_agent.wire.frames import Ack, Frame, FrameReader
from firmware_agent.wire.payloads import DoorState, VendResult

log = logging.getLogger(__name__)

POLL_S = 0.05
"""Longest the serving thread sleeps when nothing is due."""
MAX_PENDING_OUTPUT = 64 * 1024
"""Bytes kept for a pty nobody reads; past this, output is lost like a UART's into the void."""
STOCK_ENTRIES_PER_FRAME = 20
"""Slot counts per STOCK frame, which keeps each frame under the 256-byte limit."""


class VendRefusedError(RuntimeError):
    """The machine is locked (or gated and not authorised): no vend happened."""


class VirtualController:
    """An nxlink controller on a pty."""

    def __init__(
        self,
        slots: Mapping[int, tuple[str, int, int]] | None = None,
        *,
        firmware: str = "vc-1.0",
        boot_counter: int = 1,
        timing: LinkTiming | None = None,
        noise_rate: float = 0.0,
        drop_rate: float = 0.0,
        duplicate_rate: float = 0.0,
        jam_rate: float = 0.0,
        ack_loss_rate: float = 0.0,
        gated: bool = False,
        report_refusals: bool = False,
        protocol: int = PROTOCOL,
        seed: int | None = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``slots`` maps slot -> (product, count, capacity)."""
        slots = slots if slots is not None else {1: ("naloxone-nasal-4mg", 8, 10)}
        self.products = {n: p for n, (p, _, _) in slots.items()}
        self.counts = {n: c for n, (_, c, _) in slots.items()}
        self.capacities = {n: cap for n, (_, _, cap) in slots.items()}
        self.firmware = firmware
        self.boot_counter = boot_counter
        self.timing = timing or LinkTiming()
        self.noise_rate = noise_rate
        self.drop_rate = drop_rate
        self.duplicate_rate = duplicate_rate
        self.jam_rate = jam_rate
        self.ack_loss_rate = ack_loss_rate
        """Share of the agent's ACKs the controller misses, as if garbled on the way."""
        self.gated = gated
        self.report_refusals = report_refusals
        """Send ``VEND,<slot>,refused,0`` for a vend refused by LOCK or a missing AUTH."""
        self.protocol = protocol
        self.agent_protocol = 1
        """The agent's protocol from its last HELLO; kept across reboots like NV memory."""
        self.locked = False
        self.door = DoorState.CLOSED
        self.temperature_c = 20.0
        self.vends_made = 0
        """Items that really left the machine (VEND ok)."""
        self.vend_results: list[tuple[int, VendResult]] = []
        self.received: list[Frame] = []
        """Frames from the agent, once each (duplicates suppressed)."""
        self._rng = random.Random(seed)
        self._clock = clock
        self._lock = threading.RLock()
        self._link = Link(self.timing)
        self._reader = FrameReader()
        self._jams = 0
        self._authorised: dict[int, float] = {}
        self._output = bytearray()
        self._master = self._slave = -1
        self._wake_r = self._wake_w = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = ""

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> VirtualController:
        """Open the pty, say HELLO and serve the link in a thread."""
        self._master, self._slave = os.openpty()
        # Raw mode, or the tty would echo our own frames back and mangle line ends.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.port = os.ttyname(self._slave)
        with self._lock:
            self._submit(self._hello())
        self._thread = threading.Thread(target=self._serve, name="virtual-controller",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the pty."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = -1

    def __enter__(self) -> VirtualController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the machine ------------------------------------------------------------------------

    def vend(self, slot: int) -> VendResult:
        """Try to dispense one item from ``slot`` and report it to the agent."""
        with self._lock:
            refusal = ("machine is locked" if self.locked
                       else f"slot {slot} is not authorised"
                       if self.gated and self._authorised.pop(slot, 0.0) < self._clock()
                       else None)
            if refusal is not None:
                if self.report_refusals:
                    self._submit(Vend(slot, VendResult.REFUSED))
                raise VendRefusedError(refusal)
            if self.counts.get(slot, 0) <= 0:
                result = VendResult.EMPTY
            elif self._jams > 0 or self._rng.random() < self.jam_rate:
                self._jams = max(0, self._jams - 1)
                result = VendResult.JAM
            else:
                result = VendResult.OK
                self.counts[slot] -= 1
                self.vends_made += 1
            self.vend_results.append((slot, result))
            self._submit(Vend(slot, result, drop_confirmed=result is VendResult.OK))
            return result

    def jam_next(self, times: int = 1) -> None:
        """Make the next ``times`` vends jam."""
        with self._lock:
            self._jams += times

    def restock(self, slot: int, count: int) -> None:
        """Service mode: set ``slot`` to ``count`` items."""
        with self._lock:
            self.counts[slot] = count
            self._submit(Restock(slot, count))

    def open_door(self) -> None:
        """Open the service door."""
        self._set_door(DoorState.OPEN)

    def close_door(self) -> None:
        """Close the service door."""
        self._set_door(DoorState.CLOSED)

    def _set_door(self, state: DoorState) -> None:
        with self._lock:
            self.door = state
            self._submit(Door(state))

    def set_temperature(self, celsius: float) -> None:
        """Report a new cabinet temperature."""
        with self._lock:
            self.temperature_c = celsius
            self._submit(Temperature(celsius))

    def swing_temperature(self, readings: Iterable[float]) -> None:
        """Report a run of temperatures, e.g. a hot afternoon and the evening after."""
        for celsius in readings:
            self.set_temperature(celsius)

    def fault(self, code: str, slot: int | None = None) -> None:
        """Report a fault code."""
        with self._lock:
            self._submit(Fault(code, slot))

    def key(self, code: str) -> None:
        """Report keypad input."""
        with self._lock:
            self._submit(Key(code))

    def report_stock(self) -> None:
        """Send STOCK frames with every slot's count."""
        with self._lock:
            self._send_stock()

    def reboot(self) -> None:
        """Restart: new boot counter, numbering from 0, unACKed events sent again after HELLO."""
        with self._lock:
            kept = [f for f in self._link.outstanding_frames() if f.type != "HELLO"]
            self.boot_counter += 1
            self._link = Link(self.timing)
            self._reader = FrameReader()
            self._submit(self._hello())
            for frame in kept:
                self._link.submit(frame.type, frame.fields, persistent=True)
        self._wake()

    @property
    def unacked(self) -> int:
        """Frames the agent has not acknowledged yet."""
        with self._lock:
            return self._link.unacked

    def counters(self) -> dict[str, int]:
        """The controller side's link counters."""
        with self._lock:
            return {**self._link.counters.as_dict(), "bad_frames": self._reader.bad_frames}

    # --- link -----------------------------------------------------------------------------

    def _hello(self) -> Hello:
        return Hello(self.firmware, len(self.counts), self.boot_counter, self.protocol)

    def _submit(self, message: Observation) -> None:
        kind, fields = message_fields(message)
        if kind != "HELLO" and min(self.protocol, self.agent_protocol) >= 2:
            # The id is kept with the saved frame, so a resend after a reboot carries it.
            fields = (*fields, str(EventId(self.boot_counter, self._link.next_tx_seq)))
        self._link.submit(kind, fields, persistent=True)
        self._wake()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            # A full pipe already holds plenty of wake-ups.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:
                log.exception("virtual controller step failed")
                self._stop.wait(POLL_S)

    def _step(self) -> None:
        with self._lock:
            self._output.extend(self._noisy(self._link.due(self._clock())))
            deadline = self._link.next_deadline()
        timeout = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - self._clock()))
        writers = [self._master] if self._output else []
        readable, writable, _ = select.select([self._master, self._wake_r], writers, [], timeout)
        if self._wake_r in readable:
            os.read(self._wake_r, 4096)
        if self._master in readable:
            try:
                data = os.read(self._master, 4096)
            except (BlockingIOError, OSError):
                data = b""
            if data:
                self._on_bytes(data)
        if self._master in writable and self._output:
            try:
                written = os.write(self._master, self._output)
            except (BlockingIOError, OSError):
                written = 0
            del self._output[:written]
        if len(self._output) > MAX_PENDING_OUTPUT:
            del self._output[: len(self._output) - MAX_PENDING_OUTPUT]

    def _noisy(self, frames: list[bytes]) -> bytes:
        out = bytearray()
        for frame in frames:
            copies = 2 if self._rng.random() < self.duplicate_rate else 1
            for _ in range(copies):
                if self._rng.random() < self.noise_rate:
                    out.extend(self._rng.randbytes(self._rng.randint(1, 24)))
                if self.drop_rate:
                    out.extend(b for b in frame if self._rng.random() >= self.drop_rate)
                else:
                    out.extend(frame)
        return bytes(out)

    def _on_bytes(self, data: bytes) -> None:
        with self._lock:
            acks: list[bytes] = []
            for packet in self._reader.feed(data):
                if isinstance(packet, Ack):
                    if self._rng.random() >= self.ack_loss_rate:
                        self._link.handle_ack(packet)
                    continue
                acks.extend(self._on_frame(packet))
            self._output.extend(self._noisy(acks))

    def _on_frame(self, frame: Frame) -> list[bytes]:
        try:
            message = decode_message(frame)
        except MessageError as exc:
            log.warning("virtual controller got a bad frame: %s", exc)
            message = None
        if isinstance(message, Hello):
            self.agent_protocol = message.protocol
            if self._link.peer_booted(message.boot_counter):
                self._submit(self._hello())
        reception = self._link.receive(frame)
        if reception is Reception.DUPLICATE:
            return self._link.mark_handled([frame.seq])
        if reception is Reception.PENDING:
            return []
        # Firmware acts at once and ACKs in the same breath: its "storage" is RAM.
        self.received.append(frame)
        self._act(message)
        return self._link.mark_handled([frame.seq])

    def _act(self, message: object) -> None:
        match message:
            case Lock():
                self.locked = True
            case Unlock():
                self.locked = False
            case Inventory():
                self._send_stock()
            case SlotConfig(slot, product, capacity):
                self.products[slot] = product
                self.capacities[slot] = capacity
                self.counts.setdefault(slot, 0)
            case Authorise(slot, ttl_s):
                self._authorised[slot] = self._clock() + ttl_s

    def _send_stock(self) -> None:
        slots = sorted(self.counts)
        starts = range(0, max(len(slots), 1), STOCK_ENTRIES_PER_FRAME)
        # Parts are marked only for an agent that joins them (protocol 2).
        parts = len(starts) if min(self.protocol, self.agent_protocol) >= 2 else 1
        for part, i in enumerate(starts, start=1):
            chunk = {n: self.counts[n] for n in slots[i : i + STOCK_ENTRIES_PER_FRAME]}
            self._submit(StockReport(chunk, part if parts > 1 else 1, parts))
