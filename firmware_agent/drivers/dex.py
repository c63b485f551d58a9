"""The DEX/UCS driver: poll EVA-DTS audits and report what changed since the last one.

Each poll reads a full audit over the UCS link, compares its lifetime counters
with the baseline (the counters of the last audit whose observations the agent
made durable) and reports the difference as Vend, Door, Fault and Temperature
observations. The baseline moves forward only in ``commit``; it is kept both in
``Batch.state`` (stored by the agent with the batch) and in a file in the data
directory, so a restart neither re-emits nor loses vends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import serial

from firmware_agent.dex import baseline_store
from firmware_agent.dex.audit import Audit
from firmware_agent.dex.baseline_store import BaselineStore
from firmware_agent.dex.deltas import MAX_PLAUSIBLE_DELTA, Baseline, diff
from firmware_agent.dex.link import DexLinkError, LinkTimings, UcsMaster
from firmware_agent.dex.observations import hello_for, observations_for
from firmware_agent.dex.parser import parse_audit
from firmware_agent.drivers.base import Batch, ControllerDriver, DriverError

log = logging.getLogger(__name__)

PORT_READ_TIMEOUT_S = 0.05
"""pyserial read timeout: short, so the link's own deadlines decide."""
RETRY_AFTER_FAILURE_S = 10.0
"""After a failed read, try again this soon (or at the next poll, if sooner)."""


class DexSettings(Protocol):
    """The agent settings the DEX driver reads."""

    @property
    def serial_port(self) -> str: ...

    @property
    def baudrate(self) -> int: ...

    @property
    def dex_poll_s(self) -> float: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def dex_counters_since_reset(self) -> bool: ...

    @property
    def dex_slot_map(self) -> Mapping[str, int]: ...


@dataclass(frozen=True, slots=True)
class _Pending:
    """Batch token: which read produced it and the baseline it leads to."""

    read_number: int
    baseline: Baseline


class DexDriver(ControllerDriver):
    """Reads a commercial machine's audit port."""

    name = "dex"

    def __init__(
        self,
        port: str,
        *,
        data_dir: Path,
        baudrate: int = 9600,
        poll_s: float = 300.0,
        timings: LinkTimings | None = None,
        comm_id: str = "NALOXNET01",
        slot_map: Mapping[str, int] | None = None,
        retry_s: float = RETRY_AFTER_FAILURE_S,
        max_delta: int = MAX_PLAUSIBLE_DELTA,
        counters_since_reset: bool = False,
    ) -> None:
        self._port_name = port
        self._baudrate = baudrate
        self._poll_s = poll_s
        self._retry_s = retry_s
        self._timings = timings or LinkTimings()
        self._comm_id = comm_id
        self._slot_map = dict(slot_map or {})
        self._max_delta = max_delta
        # Animo-style machines keep the never-cleared counts in fields 03 (docs/dex.md).
        self._since_reset = counters_since_reset
        self._store = BaselineStore(data_dir)
        self._serial: serial.Serial | None = None
        self._master: UcsMaster | None = None
        self._committed: Baseline | None = None
        self._committed_read = 0
        self._reads = 0
        self._next_poll = 0.0
        self._greeted = False
        self._closing = threading.Event()
        self._counts = {"dex_resets": 0, "dex_unmapped_vends": 0, "dex_bad_audits": 0}

    @classmethod
    def from_settings(cls, settings: DexSettings) -> DexDriver:
        """Build the driver from the agent's settings."""
        return cls(
            settings.serial_port,
            data_dir=settings.data_dir,
            baudrate=settings.baudrate,
            poll_s=settings.dex_poll_s,
            slot_map=settings.dex_slot_map,
            counters_since_reset=settings.dex_counters_since_reset,
        )

    # --- lifecycle --------------------------------------------------------------------

    def open(self) -> None:
        """Open the serial port and load the committed baseline."""
        self._closing.clear()
        try:
            # Exclusive, so that `nx-agent dex read` by hand cannot break into a session.
            self._serial = serial.serial_for_url(
                self._port_name, baudrate=self._baudrate, timeout=PORT_READ_TIMEOUT_S,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DriverError(f"cannot open DEX port {self._port_name}: {exc}") from exc
        self._master = UcsMaster(self._serial, self._comm_id, self._timings)
        if self._committed is None:
            self._committed = self._store.load()
        self._greeted = False
        self._next_poll = 0.0

    def close(self) -> None:
        """Release the port (interrupting a wait for the next poll)."""
        self._closing.set()
        port, self._serial, self._master = self._serial, None, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                log.warning("closing DEX port %s: %s", self._port_name, exc)

    def restore_state(self, state: str | None) -> None:
        """Resume from the baseline the agent stored with its last durable batch."""
        if state is None:
            return
        try:
            self._committed = baseline_store.loads(state)
        except ValueError as exc:
            log.warning("ignoring stored DEX driver state: %s", exc)

    # --- reading ----------------------------------------------------------------------

    def read(self, timeout_s: float) -> Batch:
        """Poll an audit when one is due (waiting at most ``timeout_s`` for that)."""
        master = self._master
        if master is None:
            raise DriverError("DEX driver is not open")
        wait = self._next_poll - time.monotonic()
        if wait > 0:
            self._closing.wait(min(wait, timeout_s))
            if self._closing.is_set() or time.monotonic() < self._next_poll:
                return Batch()
        self._next_poll = time.monotonic() + self._poll_s
        audit = self._fetch(master)
        try:
            return self._batch(audit)
        except ValueError as exc:
            # Mapping an audit reads its selection ids and counters: outside input too.
            self._refuse_audit()
            raise DriverError(f"DEX audit not usable: {exc}") from exc

    def _fetch(self, master: UcsMaster) -> Audit:
        try:
            raw = master.read_audit()
        except DexLinkError as exc:
            self._retry_soon()
            raise DriverError(f"DEX read failed: {exc}") from exc
        except (serial.SerialException, OSError, TypeError) as exc:
            # TypeError: pyserial's read on a port closed by another thread.
            self._retry_soon()
            raise DriverError(f"DEX port {self._port_name} failed: {exc}") from exc
        try:
            audit = parse_audit(raw)
        except ValueError as exc:
            # DexParseError is a ValueError; any other one is a parser bug met on
            # outside input, and still only costs this audit (the baseline stays).
            self._refuse_audit()
            raise DriverError(f"DEX audit unreadable: {exc}") from exc
        if not audit.complete or audit.crc_ok is False:
            self._refuse_audit()
            raise DriverError(f"DEX audit damaged: {'; '.join(audit.warnings)}")
        return audit

    def _refuse_audit(self) -> None:
        self._counts["dex_bad_audits"] += 1
        self._retry_soon()

    def _retry_soon(self) -> None:
        self._next_poll = min(self._next_poll, time.monotonic() + self._retry_s)

    def _batch(self, audit: Audit) -> Batch:
        delta = diff(
            self._committed, audit, max_delta=self._max_delta, since_reset=self._since_reset
        )
        self._counts["dex_resets"] += len(delta.resets)
        mapped = observations_for(delta, audit, self._slot_map)
        for selection_id, count in mapped.unmapped_vends.items():
            self._counts["dex_unmapped_vends"] += count
            log.warning("DEX selection %s dispensed %d but maps to no slot", selection_id, count)
        observations = mapped.observations
        if not self._greeted:
            observations.insert(0, hello_for(audit))
            self._greeted = True
        self._reads += 1
        pending = _Pending(self._reads, delta.baseline)
        batch = Batch(observations, token=pending, state=baseline_store.dumps(delta.baseline))
        if not delta.vends and not delta.events:
            # Nothing here must survive a crash, so the baseline may move at once; this
            # also keeps the first audit's baseline if the agent never commits empties.
            self._advance(pending)
        return batch

    def commit(self, batch: Batch) -> None:
        """Move the baseline to the batch's audit: its observations are durable now."""
        if isinstance(batch.token, _Pending):
            self._advance(batch.token)

    def discard(self, batch: Batch) -> None:
        """Forget a batch the agent could not store: the next poll reports it again."""
        self._next_poll = 0.0

    def _advance(self, pending: _Pending) -> None:
        if pending.read_number <= self._committed_read:
            return
        if pending.baseline == self._committed:
            # Quiet polls change nothing: spare the flash card a write.
            self._committed_read = pending.read_number
            return
        try:
            self._store.save(pending.baseline)
        except OSError as exc:
            raise DriverError(f"cannot store DEX baseline in {self._store.path}: {exc}") from exc
        self._committed = pending.baseline
        self._committed_read = pending.read_number

    def counters(self) -> dict[str, int]:
        """Return link and audit error counters for telemetry."""
        stats = self._master.stats if self._master else None
        link = {
            "dex_sessions": stats.sessions if stats else 0,
            "dex_failures": stats.failures if stats else 0,
            "dex_naks": stats.naks_sent if stats else 0,
            "dex_noise_bytes": stats.noise_bytes if stats else 0,
        }
        return {**link, **self._counts}
