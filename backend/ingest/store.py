"""Write one batch of MQTT messages in one transaction (the caller commits, then acks)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from backend.alerts.book import AlertBook
from backend.alerts.rules import machine_alert_spec
from backend.commands.planogram import apply_confirmed_planogram
from backend.commands.store import record_result
from backend.dbutil import insert_ignore
from backend.ingest.bulk import insert_new
from backend.ingest.dead_letters import DeadLetterPolicy, store_dead_letters
from backend.ingest.ledger import (
    StockItem,
    apply_stock,
    insert_discrepancies,
    load_slots,
    settle_alerts,
    write_lots,
)
from backend.ingest.parse import Accepted, Message, Rejected, classify
from backend.lots.exposure import Reading, worth_keeping
from backend.machine_state import from_status_message, revived_by_telemetry
from backend.models import (
    AlertType,
    CommandResultRecord,
    DispenseEvent,
    Machine,
    MachineEvent,
    StockSnapshot,
    TemperatureReading,
)
from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel

log = logging.getLogger(__name__)

EventKey = tuple[str, int, int]


@dataclass
class BatchResult:
    """What one batch did, for metrics and tests."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    dead_letters_dropped: int = 0
    """Malformed messages over their machine's quota: counted, not stored."""
    retries: int = 0
    """Times the batch was tried again after the database was unreachable."""


def _key(event: payloads.VendEvent | payloads.RestockEvent | Any) -> EventKey:
    return (event.machine_id, event.boot_id, event.seq)


def _event_row(event: Any, received_at: datetime) -> tuple[bool, dict[str, Any]]:
    base = {
        "machine_id": event.machine_id,
        "boot_id": event.boot_id,
        "seq": event.seq,
        "device_time": event.device_time,
        "received_at": received_at,
    }
    if isinstance(event, payloads.VendEvent):
        return True, {
            **base,
            "slot": event.slot,
            "product": event.product,
            "result": event.result.value,
            "drop_confirmed": event.drop_confirmed,
            "source": event.source,
        }
    data = event.model_dump(
        mode="json",
        exclude={
            "schema_version",
            "machine_id",
            "boot_id",
            "seq",
            "device_time",
            "event_id",
            "kind",
        },
    )
    return False, {**base, "kind": event.kind, "slot": data.pop("slot", None), "data": data}


def _newer(event: payloads.DoorEvent | payloads.TemperatureEvent,
           boot_id: int | None, seq: int | None) -> bool:
    """Whether ``event`` comes after the one last applied (boot ids grow; seq within a boot)."""
    return boot_id is None or seq is None or (event.boot_id, event.seq) > (boot_id, seq)


class BatchWriter:
    """Validates a batch and writes everything it implies inside the caller's transaction."""

    def __init__(
        self, *, default_low_threshold: int, dead_letters: DeadLetterPolicy | None = None
    ) -> None:
        self.default_low_threshold = default_low_threshold
        self.dead_letters = dead_letters
        """The per-machine dead-letter quota; None stores every dead letter."""

    def write(self, session: Session, messages: Sequence[Message], now: datetime) -> BatchResult:
        """Write ``messages``; bad ones become dead letters. Raises only on database errors."""
        result = BatchResult(received=len(messages))
        rejected: list[Rejected] = []
        accepted: list[Accepted] = []
        for item in map(classify, messages):
            (accepted if isinstance(item, Accepted) else rejected).append(item)  # type: ignore[arg-type]
        machines = self._lock_machines(session, {a.machine_id for a in accepted})
        known: list[Accepted] = []
        for item in accepted:
            machine = machines.get(item.machine_id)
            if machine is None or not machine.active:
                reason = f"unknown machine {item.machine_id!r}"
                rejected.append(Rejected(item.message, reason, malformed=False))
            else:
                known.append(item)
        alerts = AlertBook(session, {item.machine_id for item in known})
        stock_items: dict[str, list[StockItem]] = defaultdict(list)
        new_events, result.duplicates = self._insert_events(session, known)
        _note_liveness(machines, known, new_events)
        for item in new_events:
            self._on_event(alerts, machines[item.machine_id], item, stock_items)
        for item in known:
            machine = machines[item.machine_id]
            body = item.body
            if isinstance(body, payloads.StockSnapshot):
                if self._insert_snapshot(session, body, item.message.received_at):
                    stock_items[machine.id].append(body)
            elif isinstance(body, payloads.Status):
                self._on_status(alerts, machine, body)
            elif isinstance(body, payloads.Telemetry):
                self._on_telemetry(alerts, machine, body, item.message.received_at)
            elif isinstance(body, payloads.CommandResult):
                self._on_command_result(session, machine, body, item.message.received_at)
        if stock_items:
            book = load_slots(session, stock_items, self.default_low_threshold)
            for machine_id, items in stock_items.items():
                apply_stock(session, book, alerts, machines[machine_id], items, now)
            book.write_back(now)
            write_lots(session, book, now)
            settle_alerts(book, alerts)
            insert_discrepancies(session, book)
        _insert_readings(session, known, new_events)
        alerts.flush(now)
        if rejected:
            split = store_dead_letters(session, rejected, self.dead_letters, now)
            result.dead_letters = len(split.kept)
            result.dead_letters_dropped = split.dropped_count
        result.stored = len(known) - result.duplicates
        return result

    @staticmethod
    def _lock_machines(session: Session, ids: set[str]) -> dict[str, Machine]:
        if not ids:
            return {}
        # Sorted row locks: two workers on PostgreSQL lock machines in the
        # same order, so they queue instead of deadlocking.
        query = (
            select(Machine)
            .where(col(Machine.id).in_(sorted(ids)))
            .order_by(col(Machine.id))
            .with_for_update()
        )
        return {m.id: m for m in session.exec(query).all()}

    @staticmethod
    def _insert_events(session: Session, known: list[Accepted]) -> tuple[list[Accepted], int]:
        unique: dict[EventKey, Accepted] = {}
        total = 0
        for item in known:
            if item.channel is Channel.EVENTS:
                total += 1
                unique.setdefault(_key(item.body), item)
        vend_rows: list[dict[str, Any]] = []
        other_rows: list[dict[str, Any]] = []
        for item in unique.values():
            is_vend, row = _event_row(item.body, item.message.received_at)
            (vend_rows if is_vend else other_rows).append(row)
        cols = ("machine_id", "boot_id", "seq")
        # Vends are most of the traffic and have scalar columns only: the bulk path.
        inserted = insert_new(session, DispenseEvent, vend_rows, cols)
        others = insert_ignore(session, MachineEvent, other_rows, returning=cols)
        inserted.update(tuple(r) for r in others)
        new = [item for key, item in unique.items() if key in inserted]
        return new, total - len(new)

    @staticmethod
    def _insert_snapshot(
        session: Session, snap: payloads.StockSnapshot, received: datetime
    ) -> bool:
        row = {
            "machine_id": snap.machine_id,
            "boot_id": snap.boot_id,
            "revision": snap.revision,
            "source": "controller",
            "device_time": snap.device_time,
            "received_at": received,
            "slots": [s.model_dump(mode="json") for s in snap.slots],
        }
        return bool(insert_ignore(session, StockSnapshot, [row], returning=("id",)))

    @staticmethod
    def _on_event(
        alerts: AlertBook,
        machine: Machine,
        item: Accepted,
        stock_items: dict[str, list[StockItem]],
    ) -> None:
        event = item.body
        if isinstance(event, payloads.VendEvent | payloads.RestockEvent):
            stock_items[machine.id].append(event)
        elif isinstance(event, payloads.DoorEvent):
            if not _newer(event, machine.door_event_boot_id, machine.door_event_seq):
                return
            machine.door_event_boot_id, machine.door_event_seq = event.boot_id, event.seq
            machine.door = event.state.value
            if event.state is payloads.DoorState.OPEN:
                alerts.open(
                    machine_alert_spec(AlertType.DOOR_OPEN, machine.id, f"{machine.id}: door open"),
                    {"seq": event.seq, "since": event.device_time.isoformat()},
                    keep_brief=True,
                )
            else:
                alerts.resolve(AlertType.DOOR_OPEN, machine.id)
        elif isinstance(event, payloads.TemperatureEvent):
            if not _newer(event, machine.temperature_event_boot_id, machine.temperature_event_seq):
                return
            machine.temperature_event_boot_id = event.boot_id
            machine.temperature_event_seq = event.seq
            machine.temperature_c = event.celsius
            if event.excursion:
                alerts.open(
                    machine_alert_spec(
                        AlertType.TEMPERATURE,
                        machine.id,
                        f"{machine.id}: temperature {event.celsius:.1f} °C outside storage range",
                    ),
                    {"celsius": event.celsius, "since": event.device_time.isoformat()},
                    keep_brief=True,
                )
            else:
                alerts.resolve(AlertType.TEMPERATURE, machine.id)

    @staticmethod
    def _on_status(alerts: AlertBook, machine: Machine, status: payloads.Status) -> None:
        change = from_status_message(online=status.state is payloads.MachineState.ONLINE)
        machine.status, machine.status_source = change.status.value, change.source.value
        if status.state is payloads.MachineState.ONLINE:
            machine.boot_id = status.boot_id
            if status.firmware:
                machine.firmware = status.firmware
            alerts.resolve(AlertType.MACHINE_OFFLINE, machine.id)
        else:
            alerts.open(
                machine_alert_spec(
                    AlertType.MACHINE_OFFLINE, machine.id, f"{machine.id} went offline"
                ),
                {"reason": "last will or clean disconnect"},
            )

    @staticmethod
    def _on_telemetry(
        alerts: AlertBook, machine: Machine, beat: payloads.Telemetry, received: datetime
    ) -> None:
        machine.temperature_c = beat.temperature_c
        machine.door = beat.door.value if beat.door else machine.door
        machine.outbox_depth = beat.outbox_depth
        machine.boot_id = beat.boot_id
        if beat.firmware:
            machine.firmware = beat.firmware
        revived = revived_by_telemetry(machine.status, machine.status_source)
        if revived is not None:
            machine.status, machine.status_source = revived.status.value, revived.source.value
            alerts.resolve(AlertType.MACHINE_OFFLINE, machine.id)

    @staticmethod
    def _on_command_result(
        session: Session, machine: Machine, res: payloads.CommandResult, received: datetime
    ) -> None:
        row = {
            "machine_id": machine.id,
            "command_id": res.command_id,
            "ok": res.ok,
            "error": res.error,
            "detail": dict(res.detail),
            "received_at": received,
        }
        # A command delivered twice is answered twice; the first answer stays.
        insert_ignore(session, CommandResultRecord, [row])
        # The command the backend sent (if it did) is settled in the same transaction.
        settled = record_result(session=session, machine_id=machine.id,
                                command_id=res.command_id, ok=res.ok, at=received)
        if settled and res.ok:
            # A confirmed planogram becomes the books' (before this batch's stock is applied).
            apply_confirmed_planogram(session=session, machine_id=machine.id,
                                      command_id=res.command_id, now=received)


LIVENESS_CHANNELS = frozenset({Channel.EVENTS, Channel.TELEMETRY, Channel.CMD_RESULT})


def _note_liveness(
    machines: dict[str, Machine], known: list[Accepted], new_events: list[Accepted]
) -> None:
    """Advance each machine's last_seen and max_seq once per batch, not once per message."""
    seen: dict[str, datetime] = {}
    top: dict[str, int] = {}
    for item in known:
        # Retained status and stock come again on every new subscription: not a sign of life.
        if item.channel in LIVENESS_CHANNELS:
            at = item.message.received_at
            if item.machine_id not in seen or at > seen[item.machine_id]:
                seen[item.machine_id] = at
    for item in new_events:
        seq = _key(item.body)[2]
        top[item.machine_id] = max(seq, top.get(item.machine_id, seq))
    for machine_id, at in seen.items():
        machine = machines[machine_id]
        if machine.last_seen is None or at > machine.last_seen:
            machine.last_seen = at
    for machine_id, seq in top.items():
        machine = machines[machine_id]
        if machine.max_seq is None or seq > machine.max_seq:
            machine.max_seq = seq


def _insert_readings(session: Session, known: list[Accepted], new_events: list[Accepted]) -> None:
    """Keep temperature readings for heat exposure: every crossing event, and the heartbeats
    ``worth_keeping`` (one read of each machine's last kept reading, one insert)."""
    beats: list[tuple[str, datetime, float]] = []
    rows: list[dict[str, Any]] = []
    for item in known:
        body = item.body
        if isinstance(body, payloads.Telemetry) and body.temperature_c is not None:
            beats.append((body.machine_id, body.device_time, body.temperature_c))
    for item in new_events:
        event = item.body
        if isinstance(event, payloads.TemperatureEvent):
            rows.append({"machine_id": event.machine_id, "at": event.device_time,
                         "celsius": event.celsius})
    if beats:
        last = _last_readings(session, {m for m, _, _ in beats})
        for machine_id, at, celsius in sorted(beats):
            if worth_keeping(last.get(machine_id), (at, celsius)):
                last[machine_id] = (at, celsius)
                rows.append({"machine_id": machine_id, "at": at, "celsius": celsius})
    if rows:
        session.execute(TemperatureReading.__table__.insert(), rows)  # type: ignore[attr-defined]


def _last_readings(session: Session, machine_ids: set[str]) -> dict[str, Reading]:
    table = TemperatureReading.__table__  # type: ignore[attr-defined]
    newest = (
        sa_select(table.c.machine_id, func.max(table.c.at).label("at"))
        .where(table.c.machine_id.in_(sorted(machine_ids)))
        .group_by(table.c.machine_id)
        .subquery()
    )
    found = session.execute(
        sa_select(table.c.machine_id, table.c.at, table.c.celsius).join(
            newest, (table.c.machine_id == newest.c.machine_id) & (table.c.at == newest.c.at))
    ).all()
    return {m: (at, c) for m, at, c in found}
