"""What an EVA-DTS audit says, as frozen dataclasses (the parser's output)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the machine is: DXS sender, ID1 serial/model, ID4 currency, ID5 clock."""

    communication_id: str | None = None
    dts_version: str | None = None
    serial: str | None = None
    model: str | None = None
    build: str | None = None
    location: str | None = None
    asset: str | None = None
    decimal_places: int | None = None
    currency: str | None = None
    machine_time: datetime | None = None
    control_board_firmware: str | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """One product selection: PA1 definition with its PA2-PA5 counters.

    Counters come in pairs, "since initialisation" (the machine's lifetime,
    field 01 in the standard) and "since reset" (cleared by an audit reset);
    ``None`` means the machine did not send that field.
    """

    id: str
    price: int | None = None
    name: str | None = None
    vends: int | None = None
    vend_value: int | None = None
    vends_since_reset: int | None = None
    vend_value_since_reset: int | None = None
    test_vends: int | None = None
    test_vends_since_reset: int | None = None
    free_vends: int | None = None
    free_vends_since_reset: int | None = None
    last_sale: datetime | None = None
    line: int = 0

    def dispensed(self, *, since_reset: bool = False) -> int | None:
        """Return the count of real dispenses (paid + free, never test).

        ``since_reset`` reads fields 03 instead of 01, for machines (Animo) that
        keep their never-cleared counters there.
        """
        paid, free = (
            (self.vends_since_reset, self.free_vends_since_reset)
            if since_reset
            else (self.vends, self.free_vends)
        )
        if paid is None and free is None:
            return None
        return (paid or 0) + (free or 0)


@dataclass(frozen=True, slots=True)
class VendTotals:
    """A VA1/VA2/VA3 line: machine-wide value and count, lifetime and since reset."""

    value: int | None = None
    count: int | None = None
    value_since_reset: int | None = None
    count_since_reset: int | None = None


@dataclass(frozen=True, slots=True)
class DexEvent:
    """An EA1 event (last occurrence) merged with its EA2 counters where present."""

    code: str
    occurred_at: datetime | None = None
    duration_min: int | None = None
    count_since_reset: int | None = None
    count: int | None = None
    active: bool | None = None
    line: int = 0

    def occurrence_key(self) -> str:
        """Return a key that changes whenever the event happens again."""
        when = self.occurred_at.isoformat() if self.occurred_at else "-"
        return f"{when}|{self.count if self.count is not None else '-'}"


@dataclass(frozen=True, slots=True)
class Audit:
    """A parsed EVA-DTS audit file."""

    identity: Identity
    selections: tuple[Selection, ...] = ()
    paid: VendTotals | None = None
    test: VendTotals | None = None
    free: VendTotals | None = None
    temperature_c: float | None = None
    events: tuple[DexEvent, ...] = ()
    complete: bool = False
    crc_ok: bool | None = None
    ignored_records: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def selection(self, selection_id: str) -> Selection:
        """Return the selection with this id; raise KeyError if absent."""
        for sel in self.selections:
            if sel.id == selection_id:
                return sel
        raise KeyError(selection_id)

    def to_json_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (datetimes as ISO strings)."""
        result: dict[str, Any] = _jsonable(asdict(self))
        return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
