"""Request and response bodies of visits and lots."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from annotated_types import Interval
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from backend.api.schemas import MachineId, SlotNumber, StockCount

LotNumber = Annotated[str, StringConstraints(
    strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ./_-]*$")]
"""A manufacturer lot number as printed on the box (typed or scanned as text)."""
ProductCode = Annotated[str, StringConstraints(min_length=1, max_length=48)]
Quantity = Annotated[int, Interval(ge=1, le=999)]
"""Items of one lot moved at once (a slot's capacity bounds it further)."""
Expiry = Annotated[date, Interval(ge=date(2000, 1, 1), le=date(2100, 12, 31))]
RemovalReason = Literal["expired", "heat_exposed", "damaged"]


class LotLoaded(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lot_number: LotNumber
    product: ProductCode
    expiry: Expiry
    quantity: Quantity


class StockRemoved(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: RemovalReason
    quantity: Quantity
    lot_number: LotNumber | None = Field(
        default=None, description="The lot taken out; none: items of no recorded lot")


class VisitSlot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot: SlotNumber
    found: StockCount | None = Field(
        default=None, description="Items counted before loading (a difference is a discrepancy)")
    removed: list[StockRemoved] = Field(default_factory=list, max_length=20)
    loaded: list[LotLoaded] = Field(default_factory=list, max_length=20)
    count_after: StockCount | None = Field(
        default=None, description="Items counted after loading; none: found - removed + loaded")


class VisitCreate(BaseModel):
    """A restock visit to one machine, slot by slot."""

    model_config = ConfigDict(extra="forbid")

    machine_id: MachineId
    slots: list[VisitSlot] = Field(min_length=1, max_length=99)


class DiscrepancyPublic(BaseModel):
    id: int
    machine_id: str
    slot: int
    source: str
    expected: int
    observed: int
    detected_at: datetime
    device_time: datetime | None


class DiscrepanciesPage(BaseModel):
    data: list[DiscrepancyPublic]
    count: int


class VisitPublic(BaseModel):
    id: int
    machine_id: str
    visited_at: datetime
    visited_by: str | None
    counts: dict[str, int] = Field(description="slot number -> count after the visit")
    slots: list[VisitSlot]
    discrepancies: list[dict[str, int]] = Field(
        description="slot, expected (the books) and observed (found) where they differed")
    resolved_alerts: int = Field(description="Alerts this visit resolved")


class LotPublic(BaseModel):
    id: int
    slot: int | None
    product: str
    lot_number: str
    expiry: date
    quantity: int
    loaded_at: datetime
    outside_storage_h: float = Field(description="Hours outside 15-25 °C since loaded")
    outside_excursion_min: float = Field(description="Minutes outside 4-40 °C since loaded")
    below_freezing_min: float = Field(description="Minutes below 0 °C since loaded")
    replace_because: list[str] = Field(
        description="expired, expiring, heat:storage_range, heat:excursion_range, heat:freezing")


class LotsPage(BaseModel):
    data: list[LotPublic]
    count: int
