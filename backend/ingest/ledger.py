"""Apply new events and stock reports of one batch to the slots, in device-time order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from backend import stock
from backend.alerts.book import AlertBook
from backend.alerts.rules import settle_slot_alerts, slot_subject, vend_failure_spec
from backend.lots import fefo
from backend.lots.fefo import LotKey, SlotLots
from backend.models import AlertType, Machine, NaloxoneLot, Slot, StockDiscrepancy
from backend.stock import Change, StockSource
from firmware_agent.wire import payloads

StockItem = payloads.VendEvent | payloads.RestockEvent | payloads.StockSnapshot


@dataclass
class SlotBook:
    """The slots of the machines in a batch, with each slot's count before the batch."""

    default_low_threshold: int
    slots: dict[tuple[str, int], Slot] = field(default_factory=dict)
    before: dict[tuple[str, int], int | None] = field(default_factory=dict)
    discrepancies: list[dict[str, Any]] = field(default_factory=list)
    # Counts live here during the batch and reach the ORM rows once, at the end:
    # setting attributes on a mapped row per event costs more than the SQL.
    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    # The known lots of the slots that have any, kept first-expiry-first-out as
    # the counts change, and each lot's row id and quantity before the batch.
    lots: dict[tuple[str, int], SlotLots] = field(default_factory=dict)
    lot_rows: dict[tuple[str, int], dict[LotKey, tuple[int, int]]] = field(default_factory=dict)

    def count(self, slot: Slot) -> int:
        """Return the slot's count as of the events applied so far."""
        return self.counts.get((slot.machine_id, slot.slot), slot.count)

    def write_back(self, now: datetime) -> None:
        """Copy changed counts onto the slot rows."""
        for key, value in self.counts.items():
            slot = self.slots[key]
            if slot.count != value or self.before.get(key) is None:
                slot.count = value
                slot.updated_at = now

    def threshold(self, slot: Slot) -> int:
        """Return the slot's low-stock threshold, or the default."""
        return stock.effective_low_threshold(slot.low_threshold, self.default_low_threshold)

    def get(self, session: Session, machine_id: str, number: int, product: str | None) -> Slot:
        """Return the slot, creating it (empty) when the machine reports one we did not know."""
        key = (machine_id, number)
        found = self.slots.get(key)
        if found is None:
            found = Slot(
                machine_id=machine_id,
                slot=number,
                product=product,
                capacity=0,
                count=0,
                low_threshold=self.default_low_threshold,
            )
            session.add(found)
            self.slots[key] = found
            self.before[key] = None
        return found

    def apply(self, slot: Slot, change: Change, now: datetime, device_time: datetime) -> None:
        """Set the slot's count and keep any discrepancy for insertion."""
        key = (slot.machine_id, slot.slot)
        self.counts[key] = change.after
        lots = self.lots.get(key)
        if lots is not None and lots.count != change.after:
            self.lots[key] = fefo.set_count(lots, change.after)[0]
        if change.discrepancy is not None:
            self.discrepancies.append(
                {
                    "machine_id": slot.machine_id,
                    "slot": slot.slot,
                    "source": change.discrepancy.source.value,
                    "expected": change.discrepancy.expected,
                    "observed": change.discrepancy.observed,
                    "detected_at": now,
                    "device_time": device_time,
                    "details": {},
                }
            )


def load_slots(
    session: Session, machine_ids: Iterable[str], default_low_threshold: int
) -> SlotBook:
    """Load (and on PostgreSQL lock) the slots of ``machine_ids``."""
    book = SlotBook(default_low_threshold)
    ids = sorted(set(machine_ids))
    if not ids:
        return book
    query = (
        select(Slot)
        .where(col(Slot.machine_id).in_(ids))
        .order_by(col(Slot.machine_id), col(Slot.slot))
        .with_for_update()
    )
    for slot in session.exec(query).all():
        key = (slot.machine_id, slot.slot)
        book.slots[key] = slot
        book.before[key] = slot.count
    _load_lots(session, book, ids)
    return book


def _load_lots(session: Session, book: SlotBook, machine_ids: list[str]) -> None:
    """Read the lots of the batch's machines in one query."""
    lot = NaloxoneLot.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        lot.select().where(lot.c.machine_id.in_(machine_ids), lot.c.quantity > 0)
    ).all()
    for row in rows:
        key = (row.machine_id, row.slot)
        if key in book.slots:
            lot_key = LotKey(row.expiry, row.lot_number, row.product)
            book.lot_rows.setdefault(key, {})[lot_key] = (row.id, row.quantity)
    for key, known in book.lot_rows.items():
        book.lots[key] = fefo.make(book.slots[key].count, [(k, q) for k, (_, q) in known.items()])


def write_lots(session: Session, book: SlotBook, now: datetime) -> None:
    """Write the lot quantities the batch changed, in one statement."""
    changed: list[dict[str, Any]] = []
    for key, state in book.lots.items():
        for lot_key, (row_id, before) in book.lot_rows[key].items():
            after = state.quantity(lot_key)
            if after != before:
                changed.append({"row_id": row_id, "quantity": after,
                                "emptied_at": now if after == 0 else None})
    if changed:
        lot = NaloxoneLot.__table__  # type: ignore[attr-defined]
        session.execute(
            lot.update().where(lot.c.id == bindparam("row_id")).values(
                quantity=bindparam("quantity"), emptied_at=bindparam("emptied_at")),
            changed,
        )


def _time_of(item: StockItem) -> datetime:
    return item.device_time


def apply_stock(
    session: Session,
    book: SlotBook,
    alerts: AlertBook,
    machine: Machine,
    items: list[StockItem],
    now: datetime,
) -> None:
    """Apply a machine's new vends, restocks and snapshots to its slots."""
    for item in sorted(items, key=_time_of):
        if isinstance(item, payloads.StockSnapshot):
            _apply_snapshot(session, book, machine, item, now)
        elif isinstance(item, payloads.RestockEvent):
            if stock.already_counted(item.device_time, machine.stock_as_of):
                continue
            slot = book.get(session, machine.id, item.slot, None)
            book.apply(slot, stock.restock(book.count(slot), item.count), now, item.device_time)
        else:
            _apply_vend(session, book, alerts, machine, item, now)


def _apply_vend(
    session: Session,
    book: SlotBook,
    alerts: AlertBook,
    machine: Machine,
    event: payloads.VendEvent,
    now: datetime,
) -> None:
    slot = book.get(session, machine.id, event.slot, event.product)
    subject = slot_subject(machine.id, event.slot)
    if event.result is payloads.VendResult.OK:
        alerts.resolve(AlertType.VEND_FAILURE, subject)
        if not stock.already_counted(event.device_time, machine.stock_as_of):
            book.apply(slot, stock.vend(book.count(slot)), now, event.device_time)
    elif event.result is payloads.VendResult.EMPTY:
        # The controller found the slot empty: that is a stock report.
        if not stock.already_counted(event.device_time, machine.stock_as_of):
            change = stock.reconcile(book.count(slot), 0, StockSource.CONTROLLER)
            book.apply(slot, change, now, event.device_time)
    elif event.result is payloads.VendResult.REFUSED:
        # Locked or not authorised: the machine did as told, nothing failed.
        return
    else:
        spec = vend_failure_spec(machine.id, event.slot, event.result.value)
        alerts.open(spec, {"result": event.result.value, "seq": event.seq})


def _apply_snapshot(
    session: Session,
    book: SlotBook,
    machine: Machine,
    snapshot: payloads.StockSnapshot,
    now: datetime,
) -> None:
    if machine.stock_as_of is not None and snapshot.device_time <= machine.stock_as_of:
        return  # an older report than one already adopted
    for reported in snapshot.slots:
        slot = book.get(session, machine.id, reported.slot, reported.product)
        if reported.product is not None:
            slot.product = reported.product
        if reported.capacity is not None:
            slot.capacity = reported.capacity
        if reported.count is None:
            continue  # the agent does not know this slot's count yet: keep ours
        change = stock.reconcile(book.count(slot), reported.count, StockSource.CONTROLLER)
        book.apply(slot, change, now, snapshot.device_time)
    machine.stock_as_of = snapshot.device_time


def settle_alerts(book: SlotBook, alerts: AlertBook) -> None:
    """Want stock alerts open or resolved for the slots whose count changed."""
    for key, slot in book.slots.items():
        before = book.before.get(key)
        if before is not None and before == slot.count:
            continue
        settled = settle_slot_alerts(
            machine_id=slot.machine_id,
            slot=slot.slot,
            product=slot.product,
            count=slot.count,
            threshold=book.threshold(slot),
        )
        for spec in settled.open:
            alerts.open(spec, dict(settled.details))
        for kind in settled.resolve:
            alerts.resolve(kind, settled.subject)


def insert_discrepancies(session: Session, book: SlotBook) -> None:
    """Store the discrepancies the batch found."""
    if book.discrepancies:
        session.execute(
            StockDiscrepancy.__table__.insert(),  # type: ignore[attr-defined]
            book.discrepancies,
        )
