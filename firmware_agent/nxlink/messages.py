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
from firmware_agent.wire.frames import Frame, FrameError
from firmware_agent.wire.payloads import MAX_AUTHORIZE_TTL_S, DoorState, VendResult

BOOT_MODULUS = 2**32
"""Boot counters are 0..4294967295 and wrap to 0."""
MAX_SLOT = 99
MAX_COUNT = 10_000
MIN_CELSIUS, MAX_CELSIUS = -60.0, 120.0
MAX_AUTH_S = MAX_AUTHORIZE_TTL_S
"""AUTH's ttl bound, the same as the ``authorize_vend`` command's."""

_FIRMWARE_RE = re.compile(r"^[A-Za-z0-9._+-]{1,32}$")
_PRODUCT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_FAULT_RE = re.compile(r"^[A-Z0-9_]{1,32}$")
_KEY_RE = re.compile(r"^[0-9A-D#]{1,8}$")
_INT_RE = re.compile(r"^(0|[1-9][0-9]{0,9})$")
_CELSIUS_RE = re.compile(r"^-?(0|[1-9][0-9]{0,2})(\.[0-9])?$")


class MessageError(ValueError):
    """A frame whose type or fields do not make a valid nxlink message."""


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
    _arity(f, 3)
    return Hello(
        firmware=_match(_FIRMWARE_RE, f[0], "firmware"),
        slot_count=_int(f[1], "slot count", 0, MAX_SLOT),
        boot_counter=_int(f[2], "boot counter", 0, BOOT_MODULUS - 1),
    )


def _vend(f: tuple[str, ...]) -> Vend:
    _arity(f, 3)
    try:
        result = VendResult(f[1])
    except ValueError as exc:
        raise MessageError(f"bad vend result {f[1]!r}") from exc
    if f[2] not in ("0", "1"):
        raise MessageError(f"drop sensor flag {f[2]!r} is not 0 or 1")
    return Vend(slot=_slot(f[0]), result=result, drop_confirmed=f[2] == "1")


def _stock(f: tuple[str, ...]) -> StockReport:
    counts: dict[int, int] = {}
    for pair in f:
        slot_text, sep, count_text = pair.partition(":")
        if not sep:
            raise MessageError(f"stock entry {pair!r} is not slot:count")
        slot = _slot(slot_text)
        if slot in counts:
            raise MessageError(f"slot {slot} reported twice")
        counts[slot] = _count(count_text)
    return StockReport(counts=counts)


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
    return Key(_match(_KEY_RE, f[0], "key code"))


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
        case Hello(firmware, slot_count, boot_counter):
            return "HELLO", (firmware, str(slot_count), str(boot_counter))
        case Vend(slot, result, drop_confirmed, _product):
            return "VEND", (str(slot), result.value, "1" if drop_confirmed else "0")
        case StockReport(counts):
            return "STOCK", tuple(f"{slot}:{counts[slot]}" for slot in sorted(counts))
        case Restock(slot, count):
            return "RESTOCK", (str(slot), str(count))
        case Door(state):
            return "DOOR", (state.value,)
        case Temperature(celsius):
            return "TEMP", (_format_celsius(celsius),)
        case Fault(code, slot):
            return "FAULT", (code,) if slot is None else (code, str(slot))
        case Key(code):
            return "KEY", (code,)
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
