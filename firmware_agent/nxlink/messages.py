"""nxlink messages: ``(TYPE, fields)`` of a frame <-> typed values, with clear errors.

Controller-to-agent messages decode straight into the driver-neutral
observations of ``drivers.base``; agent-to-controller messages have their own
small dataclasses here. Both directions encode and decode, so the virtual
controller speaks exactly what the agent reads. ``docs/nxlink.md`` is the
human-readable form of this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

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
from firmware_agent.wire.frames import SEQ_MODULUS, Frame, FrameError
from firmware_agent.wire.payloads import MAX_AUTHORIZE_TTL_S, DoorState, VendResult

BOOT_MODULUS = 2**32
"""Boot counters are 0..4294967295 and wrap to 0."""
PROTOCOL = 2
"""The nxlink version this code speaks; HELLO announces it (no fourth field means 1)."""
MAX_PROTOCOL = 99
EVENT_TYPES = frozenset({"VEND", "STOCK", "RESTOCK", "DOOR", "TEMP", "FAULT", "KEY"})
"""Controller frames that carry an event id from protocol 2 on."""
MAX_STOCK_PARTS = 99
KEY_STAR = "S"
"""How the keypad's ``*`` travels in KEY (``*`` ends a frame body)."""
MAX_SLOT = 99
MAX_COUNT = 10_000
MIN_CELSIUS, MAX_CELSIUS = -60.0, 120.0
MAX_AUTH_S = MAX_AUTHORIZE_TTL_S
"""AUTH's ttl bound, the same as the ``authorize_vend`` command's."""

_FIRMWARE_RE = re.compile(r"^[A-Za-z0-9._+-]{1,32}$")
_PRODUCT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_FAULT_RE = re.compile(r"^[A-Z0-9_]{1,32}$")
_KEY_RE = re.compile(r"^[0-9A-D#S]{1,8}$")
_EVENT_ID_RE = re.compile(r"^E(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,4})$")
_PART_RE = re.compile(r"^([1-9][0-9]?)/([1-9][0-9]?)$")
_INT_RE = re.compile(r"^(0|[1-9][0-9]{0,9})$")
_CELSIUS_RE = re.compile(r"^-?(0|[1-9][0-9]{0,2})(\.[0-9])?$")


class MessageError(ValueError):
    """A frame whose type or fields do not make a valid nxlink message."""


@dataclass(frozen=True, slots=True)
class EventId:
    """Who first sent an event: the controller's boot counter and the frame's number then.

    A controller keeps it with an unacknowledged event and sends it unchanged
    in every resend, also after its own reboot, when the frame number is new.
    """

    boot: int
    seq: int

    def __str__(self) -> str:
        return f"E{self.boot}.{self.seq}"

    @classmethod
    def parse(cls, text: str) -> EventId:
        """Read ``E<boot>.<seq>``; raise ``MessageError`` if it is not one."""
        match = _EVENT_ID_RE.match(text)
        if match is None:
            raise MessageError(f"bad event id {text!r}")
        boot, seq = int(match.group(1)), int(match.group(2))
        if boot >= BOOT_MODULUS or seq >= SEQ_MODULUS:
            raise MessageError(f"event id {text!r} out of range")
        return cls(boot, seq)


def split_event_id(frame: Frame) -> tuple[Frame, EventId | None]:
    """Return ``frame`` without its trailing event id field, and the id (if it has one).

    An event id starts with ``E`` and holds a ``.``, which no other field of
    an event frame can (fault codes have no ``.``, numbers no ``E``).
    """
    if frame.type not in EVENT_TYPES or not frame.fields:
        return frame, None
    last = frame.fields[-1]
    if not (last.startswith("E") and "." in last):
        return frame, None
    try:
        event_id = EventId.parse(last)
    except MessageError as exc:
        raise MessageError(f"{frame.type}: {exc}") from None
    return Frame(frame.seq, frame.type, frame.fields[:-1]), event_id


# --- agent -> controller ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    """Are you there? The ACK is the answer."""


@dataclass(frozen=True, slots=True)
class Inventory:
    """Ask the controller to send a STOCK frame."""


@dataclass(frozen=True, slots=True)
class Lock:
    """Refuse vends until UNLOCK."""


@dataclass(frozen=True, slots=True)
class Unlock:
    """Allow vends again."""


@dataclass(frozen=True, slots=True)
class SlotConfig:
    """Tell the controller what a slot holds and how many fit."""

    slot: int
    product: str
    capacity: int


@dataclass(frozen=True, slots=True)
class Authorise:
    """Let one vend through on ``slot`` within ``ttl_s`` seconds (gated machines)."""

    slot: int
    ttl_s: int


Command = Ping | Inventory | Lock | Unlock | SlotConfig | Authorise
Message = Observation | Command


# --- field parsers ----------------------------------------------------------------------


def _int(text: str, name: str, low: int, high: int) -> int:
    if not _INT_RE.match(text):
        raise MessageError(f"{name} {text!r} is not a decimal integer")
    value = int(text)
    if not low <= value <= high:
        raise MessageError(f"{name} {value} outside {low}..{high}")
    return value


def _slot(text: str) -> int:
    return _int(text, "slot", 1, MAX_SLOT)


def _count(text: str) -> int:
    return _int(text, "count", 0, MAX_COUNT)


def _match(pattern: re.Pattern[str], text: str, name: str) -> str:
    if not pattern.match(text):
        raise MessageError(f"bad {name} {text!r}")
    return text


def _arity(fields: tuple[str, ...], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(fields) <= high:
        want = str(low) if low == high else f"{low}..{high}"
        raise MessageError(f"expected {want} fields, got {len(fields)}")


def _celsius(text: str) -> float:
    if not _CELSIUS_RE.match(text):
        raise MessageError(f"temperature {text!r} is not like 21.5")
    value = float(text)
    if not MIN_CELSIUS <= value <= MAX_CELSIUS:
        raise MessageError(f"temperature {value} outside {MIN_CELSIUS}..{MAX_CELSIUS}")
    return value


def _format_celsius(value: float) -> str:
    if not math.isfinite(value):
        raise MessageError("temperature must be finite")
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


# --- decoders, one per type ---------------------------------------------------------------


def _hello(f: tuple[str, ...]) -> Hello:
    _arity(f, 3, 4)
    return Hello(
        firmware=_match(_FIRMWARE_RE, f[0], "firmware"),
        slot_count=_int(f[1], "slot count", 0, MAX_SLOT),
        boot_counter=_int(f[2], "boot counter", 0, BOOT_MODULUS - 1),
        protocol=_int(f[3], "protocol", 1, MAX_PROTOCOL) if len(f) == 4 else 1,
    )


def _vend(f: tuple[str, ...]) -> Vend:
    _arity(f, 3)
    try:
        result = VendResult(f[1])
    except ValueError as exc:
        raise MessageError(f"bad vend result {f[1]!r}") from exc
    if f[2] not in ("0", "1"):
        raise MessageError(f"drop sensor flag {f[2]!r} is not 0 or 1")
    if f[2] == "1" and result is not VendResult.OK:
        # An item the sensor saw fall left the machine: that is an "ok" vend.
        raise MessageError(f"drop sensor saw an item fall but the result is {result.value!r}")
    return Vend(slot=_slot(f[0]), result=result, drop_confirmed=f[2] == "1")


def _stock(f: tuple[str, ...]) -> StockReport:
    part = parts = 1
    if f and (marker := _PART_RE.match(f[0])):
        part, parts = int(marker.group(1)), int(marker.group(2))
        if part > parts:
            raise MessageError(f"stock part {f[0]!r}: part after the last")
        f = f[1:]
    counts: dict[int, int] = {}
    for pair in f:
        slot_text, sep, count_text = pair.partition(":")
        if not sep:
            raise MessageError(f"stock entry {pair!r} is not slot:count")
        slot = _slot(slot_text)
        if slot in counts:
            raise MessageError(f"slot {slot} reported twice")
        counts[slot] = _count(count_text)
    return StockReport(counts=counts, part=part, parts=parts)


def _restock(f: tuple[str, ...]) -> Restock:
    _arity(f, 2)
    return Restock(slot=_slot(f[0]), count=_count(f[1]))


def _door(f: tuple[str, ...]) -> Door:
    _arity(f, 1)
    try:
        return Door(DoorState(f[0]))
    except ValueError as exc:
        raise MessageError(f"bad door state {f[0]!r}") from exc


def _temp(f: tuple[str, ...]) -> Temperature:
    _arity(f, 1)
    return Temperature(_celsius(f[0]))


def _fault(f: tuple[str, ...]) -> Fault:
    _arity(f, 1, 2)
    slot = _slot(f[1]) if len(f) == 2 else None
    return Fault(code=_match(_FAULT_RE, f[0], "fault code"), slot=slot)


def _key(f: tuple[str, ...]) -> Key:
    _arity(f, 1)
    return Key(_match(_KEY_RE, f[0], "key code").replace(KEY_STAR, "*"))


def _empty(value: Command) -> Callable[[tuple[str, ...]], Command]:
    def decode(f: tuple[str, ...]) -> Command:
        _arity(f, 0)
        return value

    return decode


def _cfg(f: tuple[str, ...]) -> SlotConfig:
    _arity(f, 3)
    return SlotConfig(_slot(f[0]), _match(_PRODUCT_RE, f[1], "product"), _count(f[2]))


def _auth(f: tuple[str, ...]) -> Authorise:
    _arity(f, 2)
    return Authorise(_slot(f[0]), _int(f[1], "ttl", 1, MAX_AUTH_S))


_DECODERS: dict[str, Callable[[tuple[str, ...]], Message]] = {
    "HELLO": _hello,
    "VEND": _vend,
    "STOCK": _stock,
    "RESTOCK": _restock,
    "DOOR": _door,
    "TEMP": _temp,
    "FAULT": _fault,
    "KEY": _key,
    "PING": _empty(Ping()),
    "INV": _empty(Inventory()),
    "LOCK": _empty(Lock()),
    "UNLOCK": _empty(Unlock()),
    "CFG": _cfg,
    "AUTH": _auth,
}

MESSAGE_TYPES = frozenset(_DECODERS)


def decode_message(frame: Frame) -> Message:
    """Turn a data frame into its typed message; raise ``MessageError`` with the reason."""
    decoder = _DECODERS.get(frame.type)
    if decoder is None:
        raise MessageError(f"unknown message type {frame.type!r}")
    try:
        return decoder(frame.fields)
    except MessageError as exc:
        raise MessageError(f"{frame.type}: {exc}") from None


def message_fields(message: Message) -> tuple[str, tuple[str, ...]]:
    """Return the frame ``(TYPE, fields)`` of ``message``; raise ``MessageError`` if invalid."""
    kind, fields = _fields(message)
    # Encoding must never produce what decoding would refuse.
    try:
        decode_message(Frame(0, kind, fields))
    except FrameError as exc:
        raise MessageError(f"{kind}: {exc}") from None
    return kind, fields


def _fields(message: Message) -> tuple[str, tuple[str, ...]]:
    match message:
        case Hello(firmware, slot_count, boot_counter, protocol):
            base = (firmware, str(slot_count), str(boot_counter))
            return "HELLO", base if protocol == 1 else (*base, str(protocol))
        case Vend(slot, result, drop_confirmed, _product):
            return "VEND", (str(slot), result.value, "1" if drop_confirmed else "0")
        case StockReport(counts, part, parts):
            entries = tuple(f"{slot}:{counts[slot]}" for slot in sorted(counts))
            return "STOCK", entries if parts == 1 else (f"{part}/{parts}", *entries)
        case Restock(slot, count):
            return "RESTOCK", (str(slot), str(count))
        case Door(state):
            return "DOOR", (state.value,)
        case Temperature(celsius):
            return "TEMP", (_format_celsius(celsius),)
        case Fault(code, slot):
            return "FAULT", (code,) if slot is None else (code, str(slot))
        case Key(code):
            if KEY_STAR in code:
                raise MessageError(f"key code {code!r}: the star key is '*'")
            return "KEY", (code.replace("*", KEY_STAR),)
        case Ping():
            return "PING", ()
        case Inventory():
            return "INV", ()
        case Lock():
            return "LOCK", ()
        case Unlock():
            return "UNLOCK", ()
        case SlotConfig(slot, product, capacity):
            return "CFG", (str(slot), product, str(capacity))
        case Authorise(slot, ttl_s):
            return "AUTH", (str(slot), str(ttl_s))
    raise MessageError(f"not an nxlink message: {message!r}")
