"""The nxlink conformance kit: the agent's side of every rule, run against a real controller.

``run_rules`` plays the agent on a controller's serial line and returns one
``RuleResult`` per rule of ``docs/nxlink.md`` that can be checked from the
line without anyone at the machine. It is for controller makers
(``nx-agent conformance --port PORT``) and is never imported by ``nx-agent
run``. Rules that need a vend or a reboot (event ids kept across a reset,
refusals) are listed in the doc as manual checks.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_agent.drivers.base import Hello, StockReport
from firmware_agent.nxlink.messages import (
    BOOT_MODULUS,
    EVENT_TYPES,
    PROTOCOL,
    EventId,
    MessageError,
    decode_message,
    split_event_id,
)
from firmware_agent.nxlink.probe import Arrival, Probe
from firmware_agent.wire.frames import SEQ_MODULUS, Frame, encode, next_seq

FIRMWARE = "nx-conformance"


@dataclass(frozen=True, slots=True)
class Timing:
    """The controller's timings as the spec sets them (the kit allows some slack)."""

    ack_timeout_s: float = 0.5
    tries: int = 5
    pause_s: float = 2.0

    @property
    def answer_s(self) -> float:
        """How long an answer (an ACK, a STOCK) may take: two ACK timeouts and a margin."""
        return 2 * self.ack_timeout_s + 0.5


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule's verdict."""

    rule: str
    section: str
    passed: bool
    detail: str


@dataclass(slots=True)
class _Session:
    probe: Probe
    timing: Timing
    results: list[RuleResult] = field(default_factory=list)
    hello: Hello | None = None
    boot: int = 0
    line_before: tuple[int, int] = (0, 0)
    """Bad frames and noise bytes before the controller's HELLO (a frame cut by opening)."""

    def record(self, rule: str, section: str, passed: bool, detail: str) -> bool:
        self.results.append(RuleResult(rule, section, passed, detail))
        return passed

    def command(self, kind: str, *fields: str, seq: int | None = None) -> tuple[int, bool]:
        """Send one agent frame and wait for its ACK; return its number and whether ACKed."""
        mark = self.probe.mark()
        sent = self.probe.send(kind, *fields, seq=seq)
        acked = self.probe.wait_for(lambda: self.probe.acks(sent, mark) > 0,
                                    self.timing.answer_s)
        return sent, acked

    def stock_report(self, since: int) -> tuple[list[Arrival], str | None]:
        """Wait for a whole STOCK report after ``since``; return its frames and any fault."""
        self.probe.wait_for(lambda: _report_done(self.probe.frames("STOCK", since)),
                            self.timing.answer_s + 1.0)
        frames = self.probe.frames("STOCK", since)
        if not frames:
            return [], "no STOCK frame arrived"
        return frames, _check_report(frames, self.hello)


def _stock_of(arrival: Arrival) -> StockReport | None:
    assert isinstance(arrival.packet, Frame)
    try:
        message = decode_message(split_event_id(arrival.packet)[0])
    except MessageError:
        return None
    return message if isinstance(message, StockReport) else None


def _distinct(frames: list[Arrival]) -> list[Arrival]:
    seen: dict[int, Arrival] = {}
    for arrival in frames:
        assert isinstance(arrival.packet, Frame)
        seen.setdefault(arrival.packet.seq, arrival)
    return list(seen.values())


def _report_done(frames: list[Arrival]) -> bool:
    reports = [r for r in (_stock_of(a) for a in _distinct(frames)) if r is not None]
    return bool(reports) and len(reports) >= reports[0].parts


def _check_report(frames: list[Arrival], hello: Hello | None) -> str | None:
    distinct = _distinct(frames)
    reports = [_stock_of(a) for a in distinct]
    if any(r is None for r in reports):
        return "a STOCK frame does not decode (docs/nxlink.md 7.1)"
    parts = [r for r in reports if r is not None]
    total = parts[0].parts
    if [r.part for r in parts[:total]] != list(range(1, total + 1)):
        return f"parts arrived as {[f'{r.part}/{r.parts}' for r in parts]}, not 1/{total}.."
    seqs = [a.packet.seq for a in distinct[:total] if isinstance(a.packet, Frame)]
    if any(next_seq(a) != b for a, b in itertools.pairwise(seqs)):
        return f"parts numbered {seqs}, not consecutively"
    slots = [slot for r in parts[:total] for slot in r.counts]
    if len(slots) != len(set(slots)):
        return "a slot is listed twice in one report"
    if hello is not None and any(slot > hello.slot_count for slot in slots):
        return f"a slot beyond the {hello.slot_count} the HELLO announced"
    return None


# --- the rules, in the order they run ---------------------------------------------------------


def _hello(s: _Session) -> bool:
    mark = s.probe.mark()
    sent, acked = s.command("HELLO", FIRMWARE, "0", str(s.boot), str(PROTOCOL))
    answered = s.probe.wait_for(lambda: bool(s.probe.frames("HELLO", mark)),
                                s.timing.answer_s + 1.0)
    if not acked:
        return s.record("hello-acked", "6", False, f"our HELLO #{sent} was never ACKed")
    s.record("hello-acked", "6", True, f"HELLO #{sent} ACKed")
    if not answered:
        return s.record("hello-answered", "6", False,
                        "no HELLO in answer to a HELLO with a new boot counter")
    frame = s.probe.frames("HELLO", mark)[0].packet
    assert isinstance(frame, Frame)
    try:
        hello = decode_message(frame)
    except MessageError as exc:
        return s.record("hello-answered", "6, 7.1", False, f"its HELLO is invalid: {exc}")
    assert isinstance(hello, Hello)
    s.hello = hello
    return s.record("hello-answered", "6, 7.1", True,
                    f"firmware {hello.firmware}, {hello.slot_count} slots, boot "
                    f"{hello.boot_counter}, protocol {hello.protocol}")


def _protocol(s: _Session) -> bool:
    version = s.hello.protocol if s.hello else 0
    return s.record("protocol-2", "6.1", version >= PROTOCOL,
                    f"announces protocol {version}" + ("" if version >= PROTOCOL else
                                                       "; event ids are version 2"))


def _ping(s: _Session) -> bool:
    sent, acked = s.command("PING")
    return s.record("ack-ping", "3, 7.2", acked, f"PING #{sent} " +
                    ("ACKed" if acked else "not ACKed"))


def _unknown(s: _Session) -> bool:
    sent, acked = s.command("ZZTEST", "1")
    return s.record("ack-unknown-type", "7.2", acked,
                    f"unknown type ZZTEST #{sent} " + ("ACKed" if acked else "not ACKed"))


def _invalid(s: _Session) -> bool:
    bad_slot, acked_slot = s.command("CFG", "0", "naloxone-nasal-4mg", "10")
    bad_count, acked_count = s.command("PING", "extra")
    passed = acked_slot and acked_count
    return s.record("ack-invalid", "2.3", passed,
                    f"CFG slot 0 #{bad_slot} {'ACKed' if acked_slot else 'not ACKed'}; "
                    f"PING with a field #{bad_count} {'ACKed' if acked_count else 'not ACKed'}")


def _damaged(s: _Session) -> bool:
    seq = s.probe.next_tx
    good = encode(Frame(seq, "PING"))
    wrong_crc = good[:-3] + (b"0" if good[-3:-2] != b"0" else b"1") + b"\r\n"
    lower_hex = good[:-6] + good[-6:-2].lower() + b"\r\n"
    mark = s.probe.mark()
    for damaged in (wrong_crc, lower_hex) if lower_hex != good else (wrong_crc,):
        s.probe.send_raw(damaged)
    s.probe.pump(s.timing.answer_s)
    if s.probe.acks(seq, mark):
        return s.record("drop-damaged", "2.2", False,
                        f"ACKed a PING #{seq} with a wrong or lower-case checksum")
    s.probe.send_raw(b"\x00noise$12,PI")  # a cut frame, then the good one
    sent, acked = s.command("PING")
    return s.record("drop-damaged", "2.2", acked,
                    "damaged frames not ACKed; " + (f"the good PING #{sent} after noise ACKed"
                                                    if acked else
                                                    f"no ACK for the good PING #{sent} after "
                                                    "noise (no resynchronisation on $)"))


def _inventory(s: _Session) -> tuple[bool, int]:
    mark = s.probe.mark()
    sent, acked = s.command("INV")
    if not acked:
        s.record("inv-stock", "7.1, 7.2", False, f"INV #{sent} not ACKed")
        return False, sent
    frames, fault = s.stock_report(mark)
    detail = fault or f"STOCK in {len(_distinct(frames))} frame(s)"
    return s.record("inv-stock", "7.1, 7.2", fault is None, detail), sent


def _duplicate(s: _Session, inv_seq: int) -> bool:
    # Let the first report's frames settle, then repeat the INV under its old number.
    s.probe.pump(s.timing.ack_timeout_s)
    known = {a.packet.seq for a in s.probe.frames() if isinstance(a.packet, Frame)}
    mark = s.probe.mark()
    s.probe.send("INV", seq=inv_seq)
    acked = s.probe.wait_for(lambda: s.probe.acks(inv_seq, mark) > 0, s.timing.answer_s)
    s.probe.pump(s.timing.answer_s + 1.0)
    new = [a for a in s.probe.frames("STOCK", mark)
           if isinstance(a.packet, Frame) and a.packet.seq not in known]
    if not acked:
        return s.record("duplicate-acked-once", "5", False,
                        f"the repeated INV #{inv_seq} got no ACK")
    return s.record("duplicate-acked-once", "5", not new,
                    f"repeated INV #{inv_seq} ACKed again" +
                    (f" but acted on again: {len(new)} new STOCK frame(s)" if new else
                     ", not acted on again"))


def _retransmit(s: _Session) -> bool:
    t = s.timing
    s.probe.acking = False
    mark = s.probe.mark()
    s.probe.send("INV")
    first: list[Arrival] = []

    def enough() -> bool:
        stock = s.probe.frames("STOCK", mark)
        if not stock:
            return False
        assert isinstance(stock[0].packet, Frame)
        target = stock[0].packet.seq
        first[:] = [a for a in stock if isinstance(a.packet, Frame) and a.packet.seq == target]
        return len(first) > t.tries

    s.probe.wait_for(enough, t.answer_s + t.tries * t.ack_timeout_s * 2 + t.pause_s * 2)
    s.probe.ack_withheld()
    if len(first) <= t.tries:
        return s.record("retransmit", "4", False,
                        f"a STOCK frame left unACKed was sent {len(first)} time(s) "
                        f"(want {t.tries} in a round, then more after the pause)")
    sends = [encode(a.packet) for a in first if isinstance(a.packet, Frame)]
    gaps = [b.at - a.at for a, b in itertools.pairwise(first)]
    in_round, pause = gaps[: t.tries - 1], gaps[t.tries - 1]
    low, high = 0.6 * t.ack_timeout_s, 2.0 * t.ack_timeout_s + 0.1
    problems = []
    if len(set(sends)) != 1:
        problems.append("the resends are not byte-for-byte the same")
    if not all(low <= gap <= high for gap in in_round):
        problems.append(f"resent after {', '.join(f'{g:.2f}' for g in in_round)} s, "
                        f"not every {t.ack_timeout_s} s")
    if pause < 0.75 * t.pause_s:
        problems.append(f"the pause after {t.tries} sends was {pause:.2f} s, "
                        f"not {t.pause_s} s")
    return s.record("retransmit", "4", not problems, "; ".join(problems) or
                    f"{t.tries} sends {t.ack_timeout_s} s apart, pause {pause:.2f} s, "
                    "same bytes")


def _lock(s: _Session) -> bool:
    outcome = [s.command(kind, *fields) for kind, fields in
               (("LOCK", ()), ("UNLOCK", ()), ("AUTH", ("1", "30")),
                ("CFG", ("1", "naloxone-nasal-4mg", "10")))]
    missing = [f"#{seq}" for seq, acked in outcome if not acked]
    return s.record("ack-commands", "7.2", not missing,
                    "LOCK, UNLOCK, AUTH and CFG ACKed" if not missing
                    else f"not ACKed: {', '.join(missing)}")


def _restart(s: _Session) -> bool:
    # We "restart": a new boot counter, numbering from 0 again. A controller that
    # kept its window would take INV #1 for the PING #1 it already handled.
    s.boot = (s.boot + 1) % BOOT_MODULUS
    s.probe.next_tx = 0
    mark = s.probe.mark()
    sent, acked = s.command("HELLO", FIRMWARE, "0", str(s.boot), str(PROTOCOL))
    answered = s.probe.wait_for(lambda: bool(s.probe.frames("HELLO", mark)),
                                s.timing.answer_s + 1.0)
    s.probe.pump(s.timing.ack_timeout_s)
    stock_mark = s.probe.mark()
    inv, inv_acked = s.command("INV")
    frames, fault = s.stock_report(stock_mark)
    problems = []
    if not acked:
        problems.append(f"the new HELLO #{sent} was not ACKed")
    if not answered:
        problems.append("no HELLO in answer to a changed boot counter")
    if not inv_acked or not frames:
        problems.append(f"INV #{inv} after the restart was not acted on "
                        "(duplicate window not cleared)")
    elif fault:
        problems.append(fault)
    return s.record("peer-restart", "6", not problems, "; ".join(problems) or
                    "answered the new counter and acted on a reused number")


def _line(s: _Session) -> bool:
    bad = s.probe.reader.bad_frames - s.line_before[0]
    noise = s.probe.reader.noise_bytes - s.line_before[1]
    ok = bad == 0 and noise == 0
    return s.record("clean-frames", "1, 2, 2.2", ok,
                    "every byte was part of a valid frame" if ok else
                    f"{bad} bad frame(s), {noise} noise byte(s) (wrong checksum, form or "
                    "length, or bytes outside frames)")


def _numbering(s: _Session) -> bool:
    seqs = list(dict.fromkeys(a.packet.seq for a in s.probe.frames()
                              if isinstance(a.packet, Frame)))
    if not seqs:
        return s.record("numbering", "3", False, "no data frame arrived")
    start = seqs[0]
    expected = {(start + i) % SEQ_MODULUS for i in range(len(seqs))}
    ok = set(seqs) == expected
    return s.record("numbering", "3", ok, f"frames #{seqs[0]}..#{seqs[-1]}" +
                    ("" if ok else f" with gaps: {seqs}"))


def _event_ids(s: _Session) -> bool:
    events = [a.packet for a in s.probe.frames()
              if isinstance(a.packet, Frame) and a.packet.type in EVENT_TYPES]
    if not events:
        return s.record("event-ids", "5", False, "no event frame arrived to look at")
    boot = s.hello.boot_counter if s.hello else None
    problems: list[str] = []
    for frame in events:
        try:
            event_id = split_event_id(frame)[1]
        except MessageError as exc:
            problems.append(f"#{frame.seq}: {exc}")
            continue
        if event_id is None:
            problems.append(f"#{frame.seq} {frame.type} has no event id")
        elif event_id.boot == boot and event_id != EventId(boot, frame.seq):
            problems.append(f"#{frame.seq} carries {event_id}, not E{boot}.{frame.seq}")
    return s.record("event-ids", "5", not problems, "; ".join(sorted(set(problems))[:3]) or
                    f"{len(events)} event frame(s), each with its id")


def run_rules(probe: Probe, timing: Timing | None = None,
              boot: int | None = None) -> list[RuleResult]:
    """Run every rule against the controller at the other end of ``probe``."""
    s = _Session(probe, timing or Timing(),
                 boot=secrets.randbelow(BOOT_MODULUS) if boot is None else boot)
    if not _hello(s):
        return s.results  # nothing else can go out before the HELLO is ACKed
    s.line_before = (probe.reader.bad_frames, probe.reader.noise_bytes)
    steps: list[Callable[[_Session], bool]] = [_protocol, _ping, _unknown, _invalid, _damaged]
    for step in steps:
        step(s)
    _ok, inv_seq = _inventory(s)
    _duplicate(s, inv_seq)
    _retransmit(s)
    _lock(s)
    _restart(s)
    probe.pump(timing.ack_timeout_s if timing else 0.5)
    for final in (_line, _numbering, _event_ids):
        final(s)
    return s.results
