"""An in-memory ``ConsoleApi`` for page tests: the contract JSON, parsed, no network."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from console.api_models import (
    AlertPublic,
    AlertStatus,
    AreaCollection,
    AuditRecord,
    DeviceCredential,
    Discrepancy,
    DispenseStats,
    HotspotCollection,
    HotspotSeries,
    Identity,
    IssuedPlan,
    MachineCommand,
    MachineDetail,
    MachinePublic,
    Page,
    RestockPlan,
    RestockVisitPublic,
    StatsToday,
    StockHistory,
    TemperatureHistory,
    TokenCreated,
    TokenPublic,
    VisitRecorded,
)
from console.client import (
    UNAUTHORIZED_TEXT,
    ApiError,
    ApiUnavailableError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
)
from tests.console.fake_api import dispense_areas_json, plan_json, stop_json

ROLE_TOKENS = {
    role: f"test-token-{role}" for role in ("admin", "outreach", "health", "provisioning")
}
"""One token per role that ``MemoryApi`` accepts (as the demo makes one per role)."""


class MemoryApi:
    """Serve machines and alerts from lists; record the actions pages take.

    ``connect(token)`` stands for building a client with ``token``; ``me()``
    answers for the tokens in ``identities`` and refuses the others (401).
    """

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
        self.area_features: list[dict[str, Any]] = []
        self.area_totals: dict[str, int | str] = {}
        self.area_failure: str | None = None
        """Set: the areas and the dispense export fail with this message."""
        self.heat_ranges: list[tuple[date, date]] = []
        """The (first, last) days the dispense heat was asked for."""
        self.stats_day: date | None = None
        """The backend's statistics day (its data clock); None: it answers 404, as an
        older backend without the route would."""
        self.hotspot_calls = 0
        self.actions: list[tuple[str, int | str]] = []
        self.failure: str | None = None
        self.visits: list[tuple[str, dict[int, int]]] = []
        self.gone: set[str] = set()
        """Machines still listed but whose detail lookup answers 404 (removed meanwhile)."""
        self.identities: dict[str, Identity] = {
            token: Identity(name=f"test-{role}", role=role) for role, token in ROLE_TOKENS.items()
        }
        self.token: str | None = None
        self.connected: list[str] = []
        self.revoked: set[str] = set()
        """Tokens refused from now on (expired or revoked while a session uses them)."""
        self.token_rows: list[TokenPublic] = []
        self.audit_records: list[AuditRecord] = []
        self.audit_queries: list[dict[str, Any]] = []
        self.unreachable: str | None = None
        """Set to a URL: ``me()`` fails as if the API were down."""
        self.refuse_writes = False
        """Acknowledging answers 403, as the API does when the role lacks the right."""
        self.plan = plan_json([
            [stop_json(1, "test-003", loads=((1, 0, 8), (2, 0, 8)), lat=39.97, lon=-75.13),
             stop_json(2, "test-002", urgency="urgent", arrival="2026-11-24T14:40:00Z",
                       loads=((1, 2, 8),), lat=39.98, lon=-75.12)],
            [stop_json(1, "test-005", urgency="routine", loads=((2, 3, 8),))],
        ], left_out=[{"machine_id": "test-004", "urgency": "critical", "items": 16,
                      "reason": "offline: its stock cannot be confirmed"}])
        self.plan_requests: list[dict[str, Any]] = []
        self.issued: list[IssuedPlan] = []
        self.visit_posts: list[tuple[str, dict[str, Any]]] = []
        """Every POST /api/v1/visits as sent: (Idempotency-Key, body)."""
        self.recorded_visits: dict[str, tuple[dict[str, Any], VisitRecorded]] = {}
        """Idempotency-Key -> the visit recorded under it (a retry replays it)."""
        self.lose_visit_answers = 0
        """Record the next N visits but answer as if the connection dropped."""
        self.history_from = date(2000, 1, 1)
        """``dispense_stats`` returns no series for ranges ending before this day."""
        self.stats_queries: list[dict[str, Any]] = []
        self.sent_commands: list[MachineCommand] = []
        """Commands as the API stores them, oldest first; tests settle them with ``answer``."""
        self.machine_edits: list[tuple[str, dict[str, Any]]] = []
        self.devices: list[dict[str, Any]] = []

    def connect(self, token: str) -> MemoryApi:
        """Act as a client that sends ``token`` (what ``session.make_client`` returns)."""
        self.token = token
        self.connected.append(token)
        return self

    def _identity(self) -> Identity:
        if self.token is None or self.token in self.revoked or self.token not in self.identities:
            raise UnauthorizedError(UNAUTHORIZED_TEXT, status_code=401)
        return self.identities[self.token]

    def _check(self) -> None:
        self._identity()
        if self.failure:
            raise ApiError(self.failure)

    def me(self) -> Identity:
        if self.unreachable:
            raise ApiUnavailableError(f"cannot reach the API at {self.unreachable}")
        return self._identity()

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
                    visited_by=self._identity().name,
                    counts={str(k): v for k, v in counts.items()},
                )
        raise NotFoundError(f"machine {machine_id} is not registered", status_code=404)

    def restock_plan(
        self,
        *,
        depot: str,
        shift_start: datetime | None = None,
        shift_hours: float = 8.0,
        vans: int = 1,
    ) -> RestockPlan:
        self._check()
        self.plan_requests.append({"depot": depot, "shift_start": shift_start,
                                   "shift_hours": shift_hours, "vans": vans})
        return RestockPlan.model_validate(self.plan)

    def issue_restock_plan(
        self,
        *,
        depot: str,
        shift_start: datetime | None = None,
        shift_hours: float = 8.0,
        vans: int = 1,
    ) -> IssuedPlan:
        plan = self.restock_plan(depot=depot, shift_start=shift_start, shift_hours=shift_hours,
                                 vans=vans)
        issued = IssuedPlan(id=len(self.issued) + 1, issued_at=datetime.now(UTC),
                            issued_by=self._identity().name, plan=plan)
        self.issued.append(issued)
        return issued

    def issued_plan(self, plan_id: int) -> IssuedPlan:
        self._check()
        for issued in self.issued:
            if issued.id == plan_id:
                return issued
        raise NotFoundError(f"no restock plan {plan_id}", status_code=404)

    def record_visit(self, visit: dict[str, Any], *, idempotency_key: str) -> VisitRecorded:
        self._check()
        self.visit_posts.append((idempotency_key, visit))
        replay = self.recorded_visits.get(idempotency_key)
        if replay is not None:
            if replay[0] != visit:
                raise ApiError("this Idempotency-Key was used for a different visit",
                               status_code=422)
            return replay[1]
        counts = {str(s["slot"]): s.get("count_after", s.get("found", 0)) for s in visit["slots"]}
        recorded = VisitRecorded(
            id=len(self.recorded_visits) + 1, machine_id=visit["machine_id"],
            visited_at=datetime.now(UTC), visited_by=self._identity().name, counts=counts,
            discrepancies=[], resolved_alerts=1)
        self.recorded_visits[idempotency_key] = (visit, recorded)
        if self.lose_visit_answers:
            self.lose_visit_answers -= 1
            raise ApiUnavailableError("cannot reach the API at http://memory: read timed out")
        return recorded

    def register_device(self, device: dict[str, Any]) -> DeviceCredential:
        self._check()
        if any(m["id"] == device["machine_id"] for m in self.machines):
            raise ApiError(f"machine {device['machine_id']!r} already has a credential",
                           status_code=409)
        self.devices.append(device)
        self.machines.append({"id": device["machine_id"], "name": device["name"],
                              "lat": device["lat"], "lon": device["lon"],
                              "site": device.get("site"), "status": "unknown",
                              "health": "ok", "slots": [], "open_alerts": 0})
        password = f"pw-{len(self.devices)}"
        return DeviceCredential(
            machine_id=device["machine_id"], mqtt_username=device["machine_id"],
            mqtt_password=password,
            agent_config=f'machine_id = "{device["machine_id"]}"\nmqtt_password = "{password}"\n')

    def update_machine(self, machine_id: str, changes: dict[str, Any]) -> MachinePublic:
        self._check()
        for item in self.machines:
            if item["id"] == machine_id:
                item.update(changes)
                self.machine_edits.append((machine_id, changes))
                return MachinePublic.model_validate(item)
        raise NotFoundError(f"machine {machine_id!r} not found", status_code=404)

    def send_command(self, machine_id: str, command: dict[str, Any]) -> MachineCommand:
        self._check()
        if not any(m["id"] == machine_id for m in self.machines):
            raise NotFoundError(f"machine {machine_id!r} not found", status_code=404)
        now = datetime.now(UTC)
        command_id = f"cmd-{len(self.sent_commands) + 1}"
        sent = MachineCommand.model_validate({
            "command_id": command_id, "machine_id": machine_id, "kind": command["kind"],
            "state": "pending", "payload": {**command, "command_id": command_id},
            "created_by": self._identity().name, "created_at": now, "send_count": 1})
        self.sent_commands.append(sent)
        return sent

    def answer(self, command_id: str, *, ok: bool, error: str | None = None) -> None:
        """Settle a command as the machine's answer would (a planogram then becomes the books)."""
        for n, command in enumerate(self.sent_commands):
            if command.command_id == command_id:
                result = {"ok": ok, "error": error, "received_at": datetime.now(UTC)}
                self.sent_commands[n] = MachineCommand.model_validate({
                    **command.model_dump(), "state": "done" if ok else "failed",
                    "result": result})
                if ok and command.kind == "planogram":
                    for item in self.machines:
                        if item["id"] == command.machine_id:
                            item["slots"] = [
                                {**cfg, "count": next((s["count"] for s in item["slots"]
                                                       if s["slot"] == cfg["slot"]), 0)}
                                for cfg in command.payload["slots"]]

    def commands(self, machine_id: str, *, limit: int = 20) -> Page[MachineCommand]:
        self._check()
        rows = [c for c in reversed(self.sent_commands) if c.machine_id == machine_id][:limit]
        return Page[MachineCommand](data=rows, count=len(rows))

    def hotspots(self, *, include_resolved: bool = False) -> HotspotCollection:
        self._check()
        self.hotspot_calls += 1
        if self.hotspot_failure:
            raise ApiError(self.hotspot_failure)
        features = [f for f in self.hotspot_features
                    if include_resolved or f["properties"].get("status") != "resolved"]
        return HotspotCollection.model_validate(
            {"type": "FeatureCollection", "features": features}
        )

    def areas(self) -> AreaCollection:
        self._check()
        if self.area_failure:
            raise ApiError(self.area_failure)
        return AreaCollection.model_validate(
            {"type": "FeatureCollection", "features": self.area_features}
        )

    def stats_today(self) -> StatsToday:
        self._check()
        if self.stats_day is None:
            raise NotFoundError("Not Found", status_code=404)
        return StatsToday(today=self.stats_day, timezone="America/New_York", clock="data")

    def dispenses_by_area(self, first: date, last: date) -> AreaCollection:
        self._check()
        if self.area_failure:
            raise ApiError(self.area_failure)
        self.heat_ranges.append((first, last))
        return AreaCollection.model_validate(
            dispense_areas_json(self.area_features, self.area_totals)
        )

    def hotspot_series(self, alert_id: int | str) -> HotspotSeries:
        """Four weeks to the cluster's last day: 6 a day, days 3 and 9 hidden, 14 at the end."""
        self._check()
        for feature in self.hotspot_features:
            if str(feature["id"]) == str(alert_id):
                props = feature["properties"]
                end = date.fromisoformat(props.get("end") or "2026-11-24")
                days = [end - timedelta(days=27 - n) for n in range(28)]
                observed: list[int | None] = [6] * 28
                small = [False] * 28
                observed[3], small[3] = None, True
                observed[9] = None  # a complementary cell
                observed[-1] = 14
                return HotspotSeries(
                    alert_id=int(alert_id), detector="space-time-permutation",
                    timezone="America/New_York", days=days, observed=observed, small=small,
                    expected=[5.5] * 28, total=None, window_start=end - timedelta(days=2),
                    window_end=end, suppression_k=5,
                    explanation=str(props.get("explanation") or ""))
        raise NotFoundError(f"no hotspot {alert_id}", status_code=404)

    def dispense_stats(
        self,
        *,
        first: date,
        last: date,
        bucket: str = "week",
        group: str = "area",
        products: list[str] | None = None,
    ) -> DispenseStats:
        """Weekly counts for two keys; nothing before ``history_from``; Fishtown's 3 is small."""
        self._check()
        self.stats_queries.append({"from": first, "to": last, "bucket": bucket, "group": group})
        monday = first - timedelta(days=first.weekday())
        buckets = []
        while monday <= last:
            buckets.append(datetime.combine(monday, time.min, UTC))
            monday += timedelta(days=7)
        keys = (["Fishtown", "Kensington"] if group == "area"
                else ["naloxone-nasal-4mg", "fentanyl-test-strips"])
        series = []
        if last >= self.history_from:
            n = len(buckets)
            busy = [20 + i for i in range(n)]
            quiet: list[int | None] = [8] * n
            small = [False] * n
            quiet[-1], small[-1] = None, True  # a 3, shown as <5
            busy_shown: list[int | None] = list(busy)
            busy_shown[-1] = None  # hidden so Fishtown's 3 cannot be worked out
            series = [
                {"key": keys[0], "counts": quiet, "small": small, "total": 8 * (n - 1) + 3},
                {"key": keys[1], "counts": busy_shown, "small": [False] * n,
                 "total": sum(busy)},
            ]
        return DispenseStats.model_validate({
            "from": first.isoformat(), "to": last.isoformat(), "bucket": bucket,
            "group": group, "timezone": "America/New_York", "suppression_k": 5,
            "buckets": [b.isoformat() for b in buckets], "series": series,
            "totals": [None] * len(buckets), "total": None if series else 0,
        })

    def temperatures(self, machine_id: str, *, hours: int = 168) -> TemperatureHistory:
        self._check()
        self._machine_known(machine_id)
        now = datetime(2026, 11, 24, 12, tzinfo=UTC)
        data = [{"at": (now - timedelta(hours=h)).isoformat(), "celsius": c, "low": c - 0.5,
                 "high": c + 0.5} for h, c in ((30, 21.0), (20, 26.5), (10, 22.0))]
        return TemperatureHistory.model_validate({
            "machine_id": machine_id, "from": (now - timedelta(hours=hours)).isoformat(),
            "to": now.isoformat(), "safe_min_c": 15.0, "safe_max_c": 25.0, "data": data,
            "count": len(data)})

    def stock_history(self, machine_id: str, *, days: int = 14) -> StockHistory:
        self._check()
        self._machine_known(machine_id)
        now = datetime(2026, 11, 24, 12, tzinfo=UTC)
        data = [{"at": (now - timedelta(hours=h)).isoformat(), "slot": 1, "count": c}
                for h, c in ((48, 10), (30, 9), (5, 8), (0, 8))]
        return StockHistory.model_validate({
            "machine_id": machine_id, "from": (now - timedelta(days=days)).isoformat(),
            "to": now.isoformat(), "data": data, "count": len(data)})

    def discrepancies(self, machine_id: str, *, limit: int = 100) -> Page[Discrepancy]:
        self._check()
        self._machine_known(machine_id)
        rows = [Discrepancy(id=1, machine_id=machine_id, slot=2, source="visit", expected=5,
                            observed=3, detected_at=datetime(2026, 11, 23, 9, tzinfo=UTC))]
        return Page[Discrepancy](data=rows, count=1)

    def _machine_known(self, machine_id: str) -> None:
        if machine_id in self.gone or all(m["id"] != machine_id for m in self.machines):
            raise NotFoundError(f"machine {machine_id} is not registered", status_code=404)

    def _set(self, alert_id: int | str, status: str) -> None:
        self._check()
        for alert in self.alerts_json:
            if str(alert["id"]) == str(alert_id):
                alert["status"] = status
                alert["acted_by"] = self._identity().name
                self.actions.append((status, alert_id))
                return
        raise NotFoundError(f"alert {alert_id} does not exist", status_code=404)

    def acknowledge_alert(self, alert_id: int | str) -> None:
        if self.refuse_writes:
            raise ForbiddenError(
                f"your role may not do this (POST /api/v1/alerts/{alert_id}/acknowledge): "
                "this role may not call this route",
                status_code=403,
            )
        self._set(alert_id, "acknowledged")

    def resolve_alert(self, alert_id: int | str) -> None:
        self._set(alert_id, "resolved")

    def tokens(self, *, include_revoked: bool = False) -> Page[TokenPublic]:
        self._check()
        rows = [t for t in self.token_rows if include_revoked or t.state != "revoked"]
        return Page[TokenPublic](data=rows, count=len(rows))

    def create_token(
        self,
        *,
        name: str,
        role: str,
        areas: list[str] | None = None,
        expires_in: str | None = None,
    ) -> TokenCreated:
        self._check()
        if any(t.name == name and t.state == "live" for t in self.token_rows):
            raise ApiError(f"a live token named {name!r} exists", status_code=409)
        secret = f"nx_memory_{len(self.token_rows)}"
        created = TokenCreated(
            name=name, role=role, prefix=secret[:8], areas=areas or [], token=secret
        )
        self.token_rows.append(TokenPublic.model_validate(created.model_dump(exclude={"token"})))
        self.identities[secret] = Identity(name=name, role=role, areas=areas or [])
        return created

    def revoke_token(self, name: str) -> TokenPublic:
        self._check()
        for n, row in enumerate(self.token_rows):
            if row.name == name and row.state == "live":
                self.token_rows[n] = row.model_copy(update={"state": "revoked"})
                self.revoked.update(t for t, i in self.identities.items() if i.name == name)
                return self.token_rows[n]
        raise NotFoundError(f"no live token named {name!r}", status_code=404)

    def audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[AuditRecord]:
        self._check()
        wanted = {"actor": actor, "action": action, "object_type": object_type,
                  "object_id": object_id}
        self.audit_queries.append({**wanted, "limit": limit, "offset": offset})
        rows = [
            r for r in self.audit_records
            if all(v is None or getattr(r, k) == v for k, v in wanted.items())
        ]
        return Page[AuditRecord](data=rows[offset : offset + limit], count=len(rows))
