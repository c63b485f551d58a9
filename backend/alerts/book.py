"""Alert changes of one ingest batch, applied at its end with as few statements as possible."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from backend.alerts.rules import AlertSpec
from backend.alerts.store import open_alert, resolve_alerts
from backend.models import Alert, AlertStatus, AlertType

Key = tuple[str, str]


@dataclass(frozen=True)
class _Wish:
    spec: AlertSpec
    details: dict[str, Any]
    keep_brief: bool


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
        self._wanted: dict[Key, _Wish | None] = {}
        self._brief: list[_Wish] = []

    def open(
        self, spec: AlertSpec, details: dict[str, Any] | None = None, *, keep_brief: bool = False
    ) -> None:
        """Want ``spec`` open at the end of the batch.

        With ``keep_brief``, an alert that a later event of the same batch resolves is
        still recorded (opened and resolved): a door opened and shut while the machine
        was offline arrives as one backlog, and the visit must not vanish.
        """
        key = (spec.type.value, spec.subject)
        if self._wanted.get(key) is not None:
            return  # opened earlier in this batch: keep that opening and its details
        # Only an alert that this open starts can be brief; one that is on in the
        # database is only kept on.
        starts = key not in self.active or key in self._wanted
        self._wanted[key] = _Wish(spec, details or {}, keep_brief and starts)

    def resolve(self, kind: AlertType, subject: str) -> None:
        """Want no active alert of ``kind`` for ``subject`` at the end of the batch."""
        key = (kind.value, subject)
        wish = self._wanted.get(key)
        if wish is not None and wish.keep_brief:
            self._brief.append(wish)
        self._wanted[key] = None

    def flush(self, now: datetime) -> None:
        """Open and resolve what changed; leave alerts already in the wanted state alone."""
        for brief in self._brief:
            kind, subject = brief.spec.type, brief.spec.subject
            if (kind.value, subject) in self.active:
                # An alert from before the batch that the batch closed before the brief one.
                resolve_alerts(self.session, kind, subject, now=now)
                self.active.discard((kind.value, subject))
            if open_alert(self.session, brief.spec, details=brief.details, now=now):
                resolve_alerts(self.session, kind, subject, now=now)
        self._brief.clear()
        for key, wish in self._wanted.items():
            if wish is None and key in self.active:
                resolve_alerts(self.session, AlertType(key[0]), key[1], now=now)
                self.active.discard(key)
            elif wish is not None and key not in self.active:
                open_alert(self.session, wish.spec, details=wish.details, now=now)
                self.active.add(key)
        self._wanted.clear()
