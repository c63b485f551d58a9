"""An in-memory ``ConsoleApi`` for page tests: the contract JSON, parsed, no network."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.api_models import (
    AlertPublic,
    AlertStatus,
    HotspotCollection,
    MachineDetail,
    MachinePublic,
    Page,
    RestockVisitPublic,
)
from console.client import ApiError, NotFoundError


class MemoryApi:
    """Serve machines and alerts from lists; record the actions pages take."""

    def __init__(
        self,
        machines: list[dict[str, Any]],
        alerts: list[dict[str, Any]],
        hotspots: list[dict[str, Any]] | None = None,
    ) -> None:
        self.machines = machines
        self.alerts_json = alerts
        self.hotspot_features = hotspots or []
        self.hotspot_failure: str | None = None
        self.actions: list[tuple[str, int | str]] = []
        self.failure: str | None = None
        self.visits: list[tuple[str, dict[int, int]]] = []
        self.gone: set[str] = set()
        """Machines still listed but whose detail lookup answers 404 (removed meanwhile)."""

    def _check(self) -> None:
        if self.failure:
            raise ApiError(self.failure)

    def all_machines(self) -> list[MachinePublic]:
        self._check()
        return [MachinePublic.model_validate(m) for m in self.machines]

    def machine(self, machine_id: str) -> MachineDetail:
        self._check()
        for item in self.machines:
            if item["id"] == machine_id and machine_id not in self.gone:
                events = [{"kind": "vend", "slot": 1, "result": "ok", "seq": 7}]
                return MachineDetail.model_validate({**item, "recent_events": events})
        raise NotFoundError(f"machine {machine_id} is not registered", status_code=404)

    def alerts(
        self,
        *,
        status: AlertStatus | None = AlertStatus.OPEN,
        alert_type: str | None = None,
        machine_id: str | None = None,
    ) -> Page[AlertPublic]:
        self._check()
        rows = [
            AlertPublic.model_validate(a)
            for a in self.alerts_json
            if (status is None or a["status"] == status.value)
            and (alert_type is None or a["type"] == alert_type)
            and (machine_id is None or a["machine_id"] == machine_id)
        ]
        return Page[AlertPublic](data=rows, count=len(rows))

    def record_restock_visit(
        self,
        machine_id: str,
        counts: dict[int, int],
        *,
        counted_before: dict[int, int] | None = None,
        by: str = "console",
    ) -> RestockVisitPublic:
        self._check()
        for item in self.machines:
            if item["id"] == machine_id:
                for slot in item["slots"]:
                    slot["count"] = counts.get(slot["slot"], slot["count"])
                self.visits.append((machine_id, dict(counts)))
                return RestockVisitPublic(
                    id=len(self.visits),
                    machine_id=machine_id,
                    visited_at=datetime.now(UTC),
                    visited_by=by,
                    counts={str(k): v for k, v in counts.items()},
                )
        raise NotFoundError(f"machine {machine_id} is not registered", status_code=404)

    def hotspots(self) -> HotspotCollection:
        self._check()
        if self.hotspot_failure:
            raise ApiError(self.hotspot_failure)
        return HotspotCollection.model_validate(
            {"type": "FeatureCollection", "features": self.hotspot_features}
        )

    def _set(self, alert_id: int | str, status: str, by: str) -> None:
        for alert in self.alerts_json:
            if str(alert["id"]) == str(alert_id):
                alert["status"] = status
                alert["acted_by"] = by
                self.actions.append((status, alert_id))
                return
        raise NotFoundError(f"alert {alert_id} does not exist", status_code=404)

    def acknowledge_alert(self, alert_id: int | str, *, by: str = "console") -> None:
        self._set(alert_id, "acknowledged", by)

    def resolve_alert(self, alert_id: int | str, *, by: str = "console") -> None:
        self._set(alert_id, "resolved", by)
