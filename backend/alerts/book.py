"""Alert changes of one ingest batch, applied at its end with as few statements as possible."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from backend.alerts.rules import AlertSpec
from backend.alerts.store import open_alert, resolve_alerts
from backend.models import Alert, AlertStatus, AlertType

Key = tuple[str, str]


class AlertBook:
    """Knows which alerts of a batch's machines are active; keeps the last wish per alert."""

    def __init__(self, session: Session, machine_ids: Iterable[str]) -> None:
        self.session = session
        ids = sorted(set(machine_ids))
        rows = (
            session.exec(
                select(Alert.type, Alert.subject).where(
                    col(Alert.machine_id).in_(ids), col(Alert.status) != AlertStatus.RESOLVED
                )
            ).all()
            if ids
            else []
        )
        self.active: set[Key] = {(kind, subject) for kind, subject in rows}
        self._wanted: dict[Key, tuple[AlertSpec, dict[str, Any]] | None] = {}

    def open(self, spec: AlertSpec, details: dict[str, Any] | None = None) -> None:
        """Want ``spec`` open at the end of the batch."""
        self._wanted[(spec.type.value, spec.subject)] = (spec, details or {})

    def resolve(self, kind: AlertType, subject: str) -> None:
        """Want no active alert of ``kind`` for ``subject`` at the end of the batch."""
        self._wanted[(kind.value, subject)] = None

    def flush(self, now: datetime) -> None:
        """Open and resolve what changed; leave alerts already in the wanted state alone."""
        for key, wish in self._wanted.items():
            if wish is None and key in self.active:
                resolve_alerts(self.session, AlertType(key[0]), key[1], now=now)
                self.active.discard(key)
            elif wish is not None and key not in self.active:
                spec, details = wish
                open_alert(self.session, spec, details=details, now=now)
                self.active.add(key)
        self._wanted.clear()
