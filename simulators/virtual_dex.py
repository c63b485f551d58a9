"""A virtual commercial vending machine with a DEX/UCS audit port on a pseudo-terminal.

The agent opens ``.port`` with pyserial exactly as it opens /dev/ttyUSB0 and
reads EVA-DTS audits whose counters advance as the test vends. The machine
plays the vending machine device ("VMD") side of the UCS exchange described in
docs/dex.md and can misbehave on request: corrupt blocks (the reader must NAK
and get them again) or garble a whole session (the reader must give up and
retry later).
"""

from __future__ import annotations

import logging
import os
import random
import select
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from firmware_agent.dex import ucs
from firmware_agent.dex.crc import dex_crc16

log = logging.getLogger(__name__)

RESPONSE_S = 2.0
"""How long the machine waits for the reader's next step before dropping the session."""
POLL_S = 0.02
# Line noise never contains the control bytes, so it cannot fake a token.
_JUNK = bytes(b for b in range(256) if b not in (ucs.ENQ, ucs.EOT, ucs.NAK, ucs.DLE))


@dataclass
class VirtualSelection:
    name: str
    price: int
    paid: int = 0
    free: int = 0
    test: int = 0
    last_sale: datetime | None = None


@dataclass
class _EventCounter:
    count: int = 0
    occurred_at: datetime | None = None
    active: bool = False


class _SessionAbortedError(Exception):
    pass


class VirtualDexMachine:
    """A machine whose audit port speaks DEX/UCS on a pty."""

    def __init__(
        self,
        selections: dict[str, tuple[str, int]] | None = None,
        *,
        serial: str = "NXV0000001",
        comm_id: str = "NXV0000001",
        response_s: float = RESPONSE_S,
        noise_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        chosen = selections or {"1": ("NALOXONE NASAL 4MG", 0), "2": ("NALOXONE IM 0.4MG", 0)}
        self.selections = {sid: VirtualSelection(n, p) for sid, (n, p) in chosen.items()}
        self.serial = serial
        self.comm_id = comm_id
        self.response_s = response_s
        self.noise_rate = noise_rate
        """Chance that junk bytes precede anything the machine sends (line noise)."""
        self._random = random.Random(seed)
        self.temperature_c: float | None = None
        self.events: dict[str, _EventCounter] = {}
        self.audits_served = 0
        self.naks_received = 0
        self.sessions_garbled = 0
        self._corrupt_blocks = 0
        self._garble_sessions = 0
        self._ask_again = 0
        self.acks_repeated = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = -1
        self._slave = -1
        self.port = ""

    # --- the machine ------------------------------------------------------------------

    def vend(self, selection: str, *, free: bool = True, count: int = 1) -> None:
        """Dispense ``count`` items from ``selection`` (free by default, as naloxone is)."""
        with self._lock:
            sel = self.selections[selection]
            if free:
                sel.free += count
            else:
                sel.paid += count
            sel.last_sale = datetime.now(UTC).replace(microsecond=0, tzinfo=None)

    def test_vend(self, selection: str) -> None:
        """Run a service-mode test vend (counted apart; not a dispense)."""
        with self._lock:
            self.selections[selection].test += 1

    def reset_counters(self) -> None:
        """Clear every counter, as a controller re-initialisation does."""
        with self._lock:
            for sel in self.selections.values():
                sel.paid = sel.free = sel.test = 0

    def set_temperature(self, celsius: float | None) -> None:
        with self._lock:
            self.temperature_c = celsius

    def record_event(self, code: str, *, active: bool = False) -> None:
        """Log an EA event (``EGS`` is the door)."""
        with self._lock:
            ev = self.events.setdefault(code, _EventCounter())
            ev.count += 1
            ev.occurred_at = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
            ev.active = active

    def open_door(self) -> None:
        self.record_event("EGS", active=True)

    def close_door(self) -> None:
        with self._lock:
            if "EGS" in self.events:
                self.events["EGS"].active = False

    def corrupt_next_blocks(self, count: int) -> None:
        """Send the next ``count`` data blocks with a bad CRC first."""
        with self._lock:
            self._corrupt_blocks += count

    def ask_again_after_next_blocks(self, count: int) -> None:
        """After the next ``count`` data blocks, send ENQ as if their answer was lost."""
        with self._lock:
            self._ask_again += count

    def garble_next_sessions(self, count: int = 1) -> None:
        """Answer the next ``count`` reads with noise, then drop them."""
        with self._lock:
            self._garble_sessions += count

    def audit_text(self) -> str:
        """Render the current EVA-DTS audit (CR LF line ends, valid G85 and SE)."""
        with self._lock:
            return self._render()

    def _render(self) -> str:
        now = datetime.now(UTC)
        body = [
            "ST*001*0001",
            f"ID1*{self.serial}*NXV-DEX*1*NaloxNet lab**{self.serial}",
            "ID4*2*978*EUR",
            f"ID5*{now:%Y%m%d}*{now:%H%M%S}",
            "CB1***nxv-1.0",
        ]
        paid = sum(s.paid for s in self.selections.values())
        value = sum(s.paid * s.price for s in self.selections.values())
        test = sum(s.test for s in self.selections.values())
        free = sum(s.free for s in self.selections.values())
        body += [f"VA1*{value}*{paid}*{value}*{paid}", f"VA2*0*{test}*0*{test}"]
        body.append(f"VA3*0*{free}*0*{free}")
        for sid, sel in self.selections.items():
            sold = sel.paid * sel.price
            body += [
                f"PA1*{sid}*{sel.price}*{sel.name}",
                f"PA2*{sel.paid}*{sold}*{sel.paid}*{sold}",
                f"PA3*{sel.test}*0*{sel.test}*0",
                f"PA4*{sel.free}*0*{sel.free}*0",
            ]
            if sel.last_sale:
                body.append(f"PA5*{sel.last_sale:%Y%m%d}*{sel.last_sale:%H%M%S}")
        if self.temperature_c is not None:
            body.append(f"MA5*TEMP*{self.temperature_c:.1f}*C")
        for code, ev in self.events.items():
            when = ev.occurred_at or now
            body.append(f"EA1*{code}*{when:%Y%m%d}*{when:%H%M%S}*0**")
            body.append(f"EA2*{code}*{ev.count}*{ev.count}**{int(ev.active)}*0")
        crc = dex_crc16("".join(line + "\r\n" for line in body).encode("latin-1"))
        body.append(f"G85*{crc:04X}")
        body.append(f"SE*{len(body) + 1}*0001")
        lines = [f"DXS*{self.comm_id}*VA*V1/1*1", *body, "DXE*1*1"]
        return "".join(line + "\r\n" for line in lines)

    # --- the port ---------------------------------------------------------------------

    def start(self) -> None:
        """Open the pty and serve UCS reads in a thread."""
        self._master, self._slave = os.openpty()
        # Raw mode: no echo and no CR/LF translation, like a real UART.
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="virtual-dex", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the pty."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> VirtualDexMachine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        session = _Session(self)
        while not self._stop.is_set():
            try:
                session.run()
            except _SessionAbortedError as exc:
                log.info("virtual DEX session dropped: %s", exc)
            except OSError as exc:
                if not self._stop.is_set():
                    log.warning("virtual DEX port error: %s", exc)
                return

    def _take(self, attr: str) -> bool:
        with self._lock:
            left: int = getattr(self, attr)
            if left > 0:
                setattr(self, attr, left - 1)
                return True
            return False


class _Session:
    """One UCS read, VMD side; raises _SessionAbortedError when the reader misbehaves."""

    def __init__(self, machine: VirtualDexMachine) -> None:
        self.m = machine
        self.reader = ucs.TokenReader()
        self.pending: deque[ucs.Token] = deque()

    def _send(self, data: bytes) -> None:
        if self.m.noise_rate and self.m._random.random() < self.m.noise_rate:
            junk = bytes(self.m._random.choice(_JUNK) for _ in range(self.m._random.randint(1, 8)))
            data = junk + data
        os.write(self.m._master, data)

    def _next(self, timeout_s: float | None) -> ucs.Token:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            while self.pending:
                token = self.pending.popleft()
                if not isinstance(token, ucs.Noise):
                    return token
            if self.m._stop.is_set():
                raise _SessionAbortedError("stopping")
            if deadline is not None and time.monotonic() >= deadline:
                raise _SessionAbortedError("reader went quiet")
            ready, _, _ = select.select([self.m._master], [], [], POLL_S)
            if ready:
                self.pending.extend(self.reader.feed(os.read(self.m._master, 1024)))

    def _abort(self, token: ucs.Token, reason: str) -> _SessionAbortedError:
        if token == ucs.Control(ucs.ENQ):
            # The reader gave up on us and starts over: that ENQ opens the next session.
            self.pending.appendleft(token)
        return _SessionAbortedError(reason)

    def _expect(self, wanted: ucs.Token, what: str) -> None:
        token = self._next(self.m.response_s)
        if token != wanted:
            raise self._abort(token, f"expected {what}, got {token!r}")

    def run(self) -> None:
        # Idle: wait for the reader's ENQ (first handshake).
        if self._next(None) != ucs.Control(ucs.ENQ):
            return
        if self.m._take("_garble_sessions"):
            self.m.sessions_garbled += 1
            self._send(b"\x10\x30\xff\x00garbage\x10\x02half a blo")
            raise _SessionAbortedError("garbled on request")
        self._send(ucs.ACK0)
        while True:
            token = self._next(self.m.response_s)
            if isinstance(token, ucs.Block) and token.header:
                break
            if token == ucs.Control(ucs.ENQ):
                self._send(ucs.ACK0)
                continue
            raise self._abort(token, f"expected the operation request, got {token!r}")
        if not token.crc_ok:
            self._send(bytes([ucs.NAK]))
            raise _SessionAbortedError("bad operation request")
        self._send(ucs.ACK1)
        self._expect(ucs.Control(ucs.EOT), "EOT after the first handshake")
        # Second handshake: identify ourselves.
        self._send(bytes([ucs.ENQ]))
        self._expect(ucs.Ack(0), "DLE 0 for the second handshake")
        ident = ucs.encode_block(ucs.identification(self.m.comm_id), header=True)
        self._send_with_retries(ident, ucs.Ack(1))
        self._send(bytes([ucs.EOT]))
        # Data: the audit, block by block.
        text = self.m.audit_text().encode("latin-1")
        self._send(bytes([ucs.ENQ]))
        self._expect(ucs.Ack(0), "DLE 0 before data")
        parts = ucs.chunk(text)
        for number, part in enumerate(parts, start=1):
            block = ucs.encode_block(part, last=number == len(parts))
            if self.m._take("_corrupt_blocks"):
                self._send(block[:-2] + bytes([block[-2] ^ 0xFF, block[-1]]))
                token = self._next(self.m.response_s)
                if token != ucs.Control(ucs.NAK):
                    raise self._abort(token, "reader accepted a corrupt block")
                self.m.naks_received += 1
            self._send_with_retries(block, ucs.Ack(number % 2))
            if self.m._take("_ask_again"):
                self._send(bytes([ucs.ENQ]))
                self._expect(ucs.Ack(number % 2), "the same acknowledgement again")
                self.m.acks_repeated += 1
        # Every block is acknowledged: the reader has the audit (count it before EOT so
        # that whoever reacts to the EOT sees the count).
        self.m.audits_served += 1
        self._send(bytes([ucs.EOT]))

    def _send_with_retries(self, block: bytes, wanted: ucs.Ack) -> None:
        for _ in range(5):
            self._send(block)
            token = self._next(self.m.response_s)
            if token == wanted:
                return
            if token != ucs.Control(ucs.NAK):
                raise self._abort(token, f"expected {wanted!r}, got {token!r}")
            self.m.naks_received += 1
        raise _SessionAbortedError("block refused five times")
