"""Parse EVA-DTS audit files (the text a DEX/UCS or DDCMP read returns).

A file is a list of segments, one per line: a tag (``PA1``), then fields
separated by ``*``. The transaction sits in an envelope ``DXS ST ... G85 SE
DXE``; G85 is a CRC-16 over the segments from ST up to G85, each ended by CR LF.
Real machines bend the standard (see docs/dex.md), so the parser is lenient
about what it does not use and strict about what it does: a counter that is not
a number is an error naming the line; unknown segments are skipped and listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from firmware_agent.dex.audit import Audit, DexEvent, Identity, Selection, VendTotals
from firmware_agent.dex.crc import dex_crc16
from firmware_agent.wire.digits import ascii_int, is_ascii_digits

_TAG = re.compile(r"^[A-Z][A-Z0-9]{1,3}$")
# Record types whose content we read; anything else is listed as ignored.
_ENVELOPE = {"DXS", "ST", "G85", "SE", "DXE"}
# MA5 is free-form machine data; these first fields announce a temperature.
_TEMPERATURE_TAGS = {"TEMP", "TMP", "TEMPERATURE", "T"}
_MAX_LINE = 1024


class DexParseError(ValueError):
    """An audit that cannot be read; ``line`` is 1-based (0 = the file as a whole)."""

    def __init__(self, line: int, reason: str, text: str = "") -> None:
        where = f"line {line}" if line else "audit"
        shown = f": {text[:60]!r}" if text else ""
        super().__init__(f"{where}: {reason}{shown}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Segment:
    line: int
    tag: str
    fields: tuple[str, ...]
    text: str

    def get(self, index: int) -> str:
        """Return field ``index`` (1-based as in the standard), '' when absent."""
        return self.fields[index - 1].strip() if index <= len(self.fields) else ""

    def raw(self, index: int) -> str:
        return self.fields[index - 1] if index <= len(self.fields) else ""

    def number(self, index: int) -> int | None:
        value = self.get(index)
        if value == "":
            return None
        count = ascii_int(value)
        if count is None:
            reason = f"{self.tag} field {index:02d} is not a count"
            raise DexParseError(self.line, reason, self.text)
        return count


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Older machines write names in Latin-1; every byte maps, so this cannot fail.
        return data.decode("latin-1")


def split_segments(data: bytes | str) -> list[_Segment]:
    """Split an audit into segments; raise DexParseError on a line that is not one."""
    text = _decode(data)
    segments = []
    for number, raw_line in enumerate(re.split(r"\r\n|\n|\r", text), start=1):
        line = raw_line.rstrip("\x00")
        if not line.strip():
            continue
        if len(line) > _MAX_LINE:
            raise DexParseError(number, f"line longer than {_MAX_LINE} characters")
        if any(ord(ch) < 32 and ch != "\t" for ch in line):
            raise DexParseError(number, "control character inside a segment", line)
        tag, *fields = line.split("*")
        if not _TAG.match(tag):
            raise DexParseError(number, "not an EVA-DTS segment (expected TAG*field*...)", line)
        segments.append(_Segment(number, tag, tuple(fields), line))
    if not segments:
        raise DexParseError(0, "empty audit: no EVA-DTS segments")
    return segments


def parse_date_time(date: str, time: str = "") -> datetime | None:
    """Read a YYMMDD or YYYYMMDD date and an HHMM or HHMMSS time; None when unset."""
    date, time = date.strip(), time.strip()
    if not is_ascii_digits(date) or int(date) == 0:
        return None
    try:
        if len(date) == 8:
            day = datetime.strptime(date, "%Y%m%d")
        elif len(date) == 6:
            day = datetime.strptime(date, "%y%m%d")
        else:
            return None
        if is_ascii_digits(time) and len(time) in (4, 6):
            clock = time.ljust(6, "0")
            return day.replace(hour=int(clock[:2]), minute=int(clock[2:4]), second=int(clock[4:]))
    except ValueError:
        return None
    return day


def _parse_temperature(seg: _Segment) -> float | None:
    if seg.get(1).upper() not in _TEMPERATURE_TAGS:
        return None
    value = seg.get(2).replace(",", ".")
    try:
        reading = float(value)
    except ValueError as exc:
        raise DexParseError(seg.line, "MA5 temperature is not a number", seg.text) from exc
    if seg.get(3).upper() == "F":
        reading = (reading - 32) * 5 / 9
    return round(reading, 2)


def _totals(seg: _Segment) -> VendTotals:
    return VendTotals(seg.number(1), seg.number(2), seg.number(3), seg.number(4))


class _Builder:
    """Accumulates segments into an Audit."""

    def __init__(self) -> None:
        self.identity = Identity()
        self.selections: list[Selection] = []
        self.totals: dict[str, VendTotals] = {}
        self.temperature: float | None = None
        self.events: dict[str, DexEvent] = {}
        self.ignored: set[str] = set()
        self.warnings: list[str] = []

    def _current(self, seg: _Segment) -> Selection:
        if not self.selections:
            raise DexParseError(seg.line, f"{seg.tag} before any PA1 selection", seg.text)
        return self.selections[-1]

    def _update_current(self, seg: _Segment, **changes: object) -> None:
        self.selections[-1] = replace(self._current(seg), **changes)  # type: ignore[arg-type]

    def add(self, seg: _Segment) -> None:
        handler = getattr(self, f"_on_{seg.tag.lower()}", None)
        if handler is None:
            if seg.tag not in _ENVELOPE:
                self.ignored.add(seg.tag)
            return
        handler(seg)

    def _on_dxs(self, seg: _Segment) -> None:
        self.identity = replace(
            self.identity, communication_id=seg.get(1) or None, dts_version=seg.get(3) or None
        )

    def _on_id1(self, seg: _Segment) -> None:
        self.identity = replace(
            self.identity,
            serial=seg.get(1) or None,
            model=seg.get(2) or None,
            build=seg.get(3) or None,
            location=seg.get(4) or None,
            asset=seg.get(6) or None,
        )

    def _on_id4(self, seg: _Segment) -> None:
        places = seg.get(1)
        self.identity = replace(
            self.identity,
            decimal_places=ascii_int(places),
            currency=seg.get(3) or None,
        )

    def _on_id5(self, seg: _Segment) -> None:
        self.identity = replace(self.identity, machine_time=parse_date_time(seg.get(1), seg.get(2)))

    def _on_cb1(self, seg: _Segment) -> None:
        self.identity = replace(self.identity, control_board_firmware=seg.get(3) or None)

    def _on_va1(self, seg: _Segment) -> None:
        self.totals["paid"] = _totals(seg)

    def _on_va2(self, seg: _Segment) -> None:
        self.totals["test"] = _totals(seg)

    def _on_va3(self, seg: _Segment) -> None:
        self.totals["free"] = _totals(seg)

    def _on_pa1(self, seg: _Segment) -> None:
        selection_id = seg.get(1)
        if not selection_id:
            raise DexParseError(seg.line, "PA1 without a selection id", seg.text)
        if any(sel.id == selection_id for sel in self.selections):
            self.warnings.append(f"line {seg.line}: selection {selection_id} defined twice")
        name = seg.raw(3).strip()
        self.selections.append(
            Selection(id=selection_id, price=seg.number(2), name=name or None, line=seg.line)
        )

    def _on_pa2(self, seg: _Segment) -> None:
        self._update_current(
            seg,
            vends=seg.number(1),
            vend_value=seg.number(2),
            vends_since_reset=seg.number(3),
            vend_value_since_reset=seg.number(4),
        )

    def _on_pa3(self, seg: _Segment) -> None:
        self._update_current(seg, test_vends=seg.number(1), test_vends_since_reset=seg.number(3))

    def _on_pa4(self, seg: _Segment) -> None:
        self._update_current(seg, free_vends=seg.number(1), free_vends_since_reset=seg.number(3))

    def _on_pa5(self, seg: _Segment) -> None:
        self._update_current(seg, last_sale=parse_date_time(seg.get(1), seg.get(2)))

    def _on_ma5(self, seg: _Segment) -> None:
        reading = _parse_temperature(seg)
        if reading is not None:
            self.temperature = reading

    def _on_ea1(self, seg: _Segment) -> None:
        code = seg.get(1)
        if not code:
            raise DexParseError(seg.line, "EA1 without an event code", seg.text)
        old = self.events.get(code)
        when = parse_date_time(seg.get(2), seg.get(3))
        # Some machines list several occurrences of one code (newest first or last):
        # keep the most recent, which is what EA1 means ("last occurrence").
        newest = old.occurred_at if old is not None else None
        if newest is not None and (when is None or when <= newest):
            return
        duration = seg.get(4)
        self.events[code] = replace(
            old or DexEvent(code=code),
            occurred_at=when,
            duration_min=ascii_int(duration),
            line=seg.line,
        )

    def _on_ea2(self, seg: _Segment) -> None:
        code = seg.get(1)
        if not code:
            raise DexParseError(seg.line, "EA2 without an event code", seg.text)
        old = self.events.get(code, DexEvent(code=code, line=seg.line))
        since_reset, since_init, activity = seg.get(2), seg.get(3), seg.get(5)
        self.events[code] = replace(
            old,
            count_since_reset=ascii_int(since_reset),
            count=ascii_int(since_init),
            active={"1": True, "0": False}.get(activity),
        )

    def build(self, complete: bool, crc_ok: bool | None) -> Audit:
        return Audit(
            identity=self.identity,
            selections=tuple(self.selections),
            paid=self.totals.get("paid"),
            test=self.totals.get("test"),
            free=self.totals.get("free"),
            temperature_c=self.temperature,
            events=tuple(self.events.values()),
            complete=complete,
            crc_ok=crc_ok,
            ignored_records=tuple(sorted(self.ignored)),
            warnings=tuple(self.warnings),
        )


def _check_envelope(segments: list[_Segment], warnings: list[str]) -> tuple[bool, bool | None]:
    tags = [seg.tag for seg in segments]
    if "DXS" not in tags and "ST" not in tags:
        raise DexParseError(segments[0].line, "no DXS or ST segment: not an EVA-DTS audit")
    complete = "DXE" in tags and "SE" in tags
    if not complete:
        warnings.append("audit is truncated: no SE/DXE trailer")
    crc_ok: bool | None = None
    if "G85" in tags and "ST" in tags:
        start, g85 = tags.index("ST"), tags.index("G85")
        covered = b"".join(
            seg.text.encode("latin-1", "replace") + b"\r\n" for seg in segments[start:g85]
        )
        expected = segments[g85].get(1).upper()
        crc_ok = f"{dex_crc16(covered):04X}" == expected
        if not crc_ok:
            warnings.append(f"line {segments[g85].line}: G85 checksum {expected} does not match")
    if "SE" in tags and "ST" in tags:
        se = segments[tags.index("SE")]
        count = se.get(1)
        included = tags.index("SE") - tags.index("ST") + 1
        if is_ascii_digits(count) and int(count) != included:
            warnings.append(f"line {se.line}: SE counts {count} segments, found {included}")
    return complete, crc_ok


def parse_audit(data: bytes | str) -> Audit:
    """Parse an EVA-DTS audit; raise DexParseError naming the line when it is malformed."""
    segments = split_segments(data)
    builder = _Builder()
    complete, crc_ok = _check_envelope(segments, builder.warnings)
    for seg in segments:
        builder.add(seg)
    return builder.build(complete, crc_ok)
