"""The agent: controller -> durable outbox -> MQTT, and commands back down.

Threads: the controller thread reads the driver, stores each batch with the
state it changed in one transaction and only then lets the driver ACK it;
the outbox pump publishes; the command thread carries out ``cmd`` messages;
paho's own thread does the network. ``start``/``stop`` for in-process use
(tests, the demo), ``run_forever`` for the command line.
"""

from __future__ import annotations

import logging
import queue
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from firmware_agent.commands import CommandHandler, command_id_of
from firmware_agent.config import AgentSettings
from firmware_agent.drivers import make_driver
from firmware_agent.drivers.base import Batch, ControllerDriver, DriverError
from firmware_agent.instance_lock import DataDirLock
from firmware_agent.ledger import Ledger
from firmware_agent.processor import STATE_LEDGER, STATE_SEQ, Processor
from firmware_agent.pump import OutboxPump
from firmware_agent.store import OutMessage, Store
from firmware_agent.uplink import CommandDelivery, Uplink
from firmware_agent.wire.payloads import CommandResult, PlanogramCommand, parse_model

log = logging.getLogger(__name__)

STATE_BOOT_ID = "boot_id"
STATE_DRIVER = "driver_state"
DB_NAME = "agent.db"
COMMAND_POLL_S = 0.2
JOIN_TIMEOUT_S = 15.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _next_boot_id(stored: str | None, clock: Callable[[], datetime]) -> int:
    """Return this start's boot id: one more than the last, or the Unix time on a fresh store.

    Starting a fresh store at the current time, not at 1, means a re-imaged
    Pi (same machine id, empty data dir) never reuses an event id of its
    earlier life, as long as its clock is roughly right.
    """
    if stored is not None:
        return int(stored) + 1
    return max(1, int(clock().timestamp()))


class Agent:
    """One machine's agent."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        driver: ControllerDriver | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._instance_lock = DataDirLock(settings.data_dir)
        self._instance_lock.acquire()
        try:
            self.store = Store(settings.data_dir / DB_NAME, max_rows=settings.outbox_max_rows)
        except BaseException:
            self._instance_lock.release()
            raise
        try:
            self._build(settings, driver, clock)
        except BaseException:
            # A setting the parts refuse (a TLS file, say): leave nothing open or held.
            self.store.close()
            self._instance_lock.release()
            raise
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat_s = settings.heartbeat_s
        self._started = time.monotonic()
        self._seen_connects = 0
        self._threads: list[threading.Thread] = []
        log.info("agent %s boot %d, next seq %d, %d messages waiting in the outbox",
                 settings.machine_id, self.boot_id, self.processor.next_seq, self.store.depth)

    def _build(self, settings: AgentSettings, driver: ControllerDriver | None,
               clock: Callable[[], datetime]) -> None:
        """Build the parts; the boot id is made durable last, once nothing can refuse."""
        self.boot_id = _next_boot_id(self.store.get(STATE_BOOT_ID), clock)
        self.processor = Processor(
            settings.machine_id, self.boot_id, source=settings.driver,
            next_seq=int(self.store.get(STATE_SEQ) or 0), ledger=self._load_ledger(),
        )
        self.driver = driver or make_driver(settings, boot_id=self.boot_id)
        self.driver.restore_state(self.store.get(STATE_DRIVER))
        self.uplink = Uplink(settings, boot_id=self.boot_id)
        self.pump = OutboxPump(self.store, self.uplink, max_inflight=settings.max_inflight)
        self.commands = CommandHandler(
            self.driver, apply_planogram=self._apply_planogram,
            publish_stock=self._publish_stock, set_heartbeat=self._set_heartbeat,
        )
        # Durable before anything uses it (nothing is sent before ``start``):
        # two starts never share a boot id.
        self.store.put({STATE_BOOT_ID: str(self.boot_id)})

    def _load_ledger(self) -> Ledger:
        text = self.store.get(STATE_LEDGER)
        if text is None:
            return Ledger()
        try:
            return Ledger.from_json(text)
        except ValueError as exc:
            log.warning("stock ledger unreadable (%s); starting empty until a STOCK report", exc)
            return Ledger()

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start every thread and return."""
        self.uplink.start()
        self.pump.start()
        for target, name in ((self._controller_loop, "nx-controller"),
                             (self._command_loop, "nx-commands")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop cleanly: nothing more is published, the port is closed, the outbox kept."""
        self._stop.set()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT_S)
        self._threads.clear()
        self.pump.stop()
        self.uplink.close()
        self.store.close()
        self._instance_lock.release()
        log.info("agent %s stopped", self.settings.machine_id)

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly (call from the main thread)."""
        done = threading.Event()

        def _on_signal(signum: int, frame: object) -> None:
            log.info("signal %d: stopping", signum)
            done.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        self.start()
        try:
            done.wait()
        finally:
            self.stop()

    @property
    def outbox_depth(self) -> int:
        """Messages not yet acknowledged by the broker."""
        return self.store.depth

    # --- controller thread ------------------------------------------------------------------

    def _controller_loop(self) -> None:
        opened = failing = False
        next_heartbeat = time.monotonic()
        while not self._stop.is_set():
            try:
                if not opened:
                    self.driver.open()
                    opened = True
                    if failing:
                        log.info("controller link is back")
                    failing = False
                batch = self.driver.read(self.settings.read_timeout_s)
                if batch.observations or batch.token:
                    self._record(batch)
                next_heartbeat = self._tick(next_heartbeat)
            except DriverError as exc:
                # One warning per outage, not one per retry.
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "controller link: %s; retrying every %.1fs",
                        exc, self.settings.reopen_s)
                failing = True
                opened = self._close_driver(opened)
                next_heartbeat = self._tick(next_heartbeat)
                self._stop.wait(self.settings.reopen_s)
            except Exception:
                log.exception("controller loop failed; reopening the port")
                opened = self._close_driver(opened)
                self._stop.wait(self.settings.reopen_s)
        self._close_driver(opened)

    def _close_driver(self, opened: bool) -> bool:
        if opened:
            try:
                self.driver.close()
            except Exception:
                log.exception("closing the controller port failed")
        return False

    def _record(self, batch: Batch) -> None:
        now = self._clock()
        with self._state_lock:
            before = self.processor.state()
            messages = self.processor.process(batch.observations, now)
            state = self.processor.state()
            if batch.state is not None:
                state[STATE_DRIVER] = batch.state
            try:
                self.store.append(messages, state)
            except sqlite3.Error:
                # Unacknowledged, the controller sends it all again later.
                log.exception("cannot store %d messages; not acknowledging", len(messages))
                self.processor.restore_state(before)
                self.driver.discard(batch)
                return
        self.driver.commit(batch)
        self.uplink.set_firmware(self.processor.firmware)
        self.pump.notify()
        events = sum(m.topic.endswith("/events") for m in messages)
        if events:
            log.info("stored %d events up to seq %d; outbox %d",
                     events, self.processor.next_seq - 1, self.store.depth)

    def _tick(self, next_heartbeat: float) -> float:
        connects = self.uplink.connects
        if connects != self._seen_connects:
            self._seen_connects = connects
            self._publish_stock()
        mono = time.monotonic()
        if mono < next_heartbeat:
            return next_heartbeat
        counters = self.driver.counters()
        counters["outbox_dropped"] = self.store.dropped
        self._append([self.processor.telemetry_message(
            self._clock(), uptime_s=mono - self._started, outbox_depth=self.store.depth,
            link=counters,
        )])
        return mono + self._heartbeat_s

    def _append(self, messages: list[OutMessage]) -> None:
        with self._state_lock:
            self.store.append(messages)
        self.pump.notify()

    # --- commands ---------------------------------------------------------------------------

    def _command_loop(self) -> None:
        while not self._stop.is_set():
            try:
                delivery = self.uplink.commands.get(timeout=COMMAND_POLL_S)
            except queue.Empty:
                continue
            self._carry_out(delivery)

    def _carry_out(self, delivery: CommandDelivery) -> None:
        """Carry out one command, put its result in the outbox, and only then acknowledge it.

        A crash anywhere before the acknowledgement leaves the command with the
        broker, which sends it again when the session resumes; a crash after it
        finds the result on disk. Commands still queued at a clean stop are not
        acknowledged either and come back at the next start.
        """
        try:
            command_id = command_id_of(delivery.payload)
            earlier = None if command_id is None else self.store.handled_result(command_id)
            if earlier is not None:
                # A repeat (the backend resends until it hears back): answer as the
                # first time, without touching the controller again.
                log.info("command %s was carried out before; answering again", command_id)
                self._append([self.processor.result_message(
                    parse_model(CommandResult, earlier))])
            else:
                result = self.commands.handle(delivery.payload)
                if result is not None:
                    with self._state_lock:
                        message = self.processor.result_message(result)
                        self.store.append([message],
                                          handled=(result.command_id, result.to_bytes()))
                    self.pump.notify()
        except Exception:
            log.exception("command handling failed; leaving it unacknowledged for a resend")
            return
        self.uplink.ack(delivery)

    def _apply_planogram(self, command: PlanogramCommand) -> None:
        with self._state_lock:
            messages = self.processor.apply_planogram(command.slots, self._clock())
            self.store.append(messages, self.processor.state())
        self.pump.notify()

    def _publish_stock(self) -> None:
        with self._state_lock:
            message = self.processor.stock_message(self._clock())
        self._append([message])

    def _set_heartbeat(self, seconds: float) -> None:
        log.info("heartbeat every %.0fs", seconds)
        self._heartbeat_s = seconds
