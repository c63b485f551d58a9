"""The console's only way to the backend: a typed HTTP client of the ``/api/v1`` API."""

from __future__ import annotations

import logging
from datetime import date, datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.api_models import (
    AlertPublic,
    AlertStatus,
    AreaCollection,
    AuditRecord,
    Delivery,
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
    NotificationRoute,
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
from console.settings import ConsoleSettings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_PAGES = 1_000
KEEPALIVE_S = 2.0
"""Well under uvicorn's keep-alive timeout (5 s), whose timer may fire late on a busy server."""
"""Stop paging after this many pages: a backend that never ends a list is a bug, not a fleet."""
PLAN_TIMEOUT_S = 60.0
"""The restock plan runs a solver with a time budget (NX_RESTOCK_SOLVER_SECONDS) after the
forecast: it may take far longer than a read, and a worker would rather wait than retry."""

_M = TypeVar("_M", bound=BaseModel)


class FleetChanges(BaseModel):
    """What changed in the fleet since a cursor (``GET /machines?since=``, ``full`` false)."""

    model_config = ConfigDict(extra="ignore")

    data: list[MachinePublic]
    removed: list[str] = Field(default_factory=list)
    cursor: str


class ApiError(RuntimeError):
    """The API answered with an error or with JSON that breaks the contract."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ApiUnavailableError(ApiError):
    """The API could not be reached at all."""


class NotFoundError(ApiError):
    """The API answered 404."""


class UnauthorizedError(ApiError):
    """The API answered 401: no token, or one that is unknown, expired or revoked."""


class ForbiddenError(ApiError):
    """The API answered 403: the caller is known but its role may not do this."""


UNAUTHORIZED_TEXT = "the API refused the token: it is unknown, expired or revoked"


def _detail(response: httpx.Response) -> str:
    """Return the reason an error response gives (problem details or FastAPI's ``detail``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "title"):
            if body.get(key):
                return str(body[key])[:200]
    return str(body)[:200]


class ApiClient:
    """Read the fleet and act on alerts through the backend's HTTP API."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 5.0,
        page_size: int = 500,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        # The fleet as last read, and where to ask for changes from (``all_machines``).
        self._fleet: dict[str, MachinePublic] | None = None
        self._fleet_cursor: str | None = None
        self._fleet_etag: str | None = None
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport,
            # Let go of an idle connection before uvicorn does (5 s): a poll reusing one
            # just as the server closes it fails with "disconnected without a response".
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_S),
        )

    @classmethod
    def from_settings(cls, settings: ConsoleSettings, token: str | None = None) -> ApiClient:
        """Build a client from console settings with ``token``, or else the preset token."""
        if token is None and settings.api_token is not None:
            token = settings.api_token.get_secret_value()
        return cls(
            settings.api_url,
            token=token,
            timeout_s=settings.http_timeout_s,
            page_size=settings.page_size,
        )

    # -- transport -----------------------------------------------------------------------

    def _exchange(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """Send a request; turn transport failures and error statuses into ``ApiError``s."""
        extra: dict[str, Any] = {} if timeout_s is None else {"timeout": timeout_s}
        try:
            try:
                response = self._http.request(
                    method, path, params=params, json=body, headers=headers, **extra
                )
            except httpx.RemoteProtocolError:
                if method != "GET":
                    raise
                # The server closed a kept-alive connection as this reused it: a GET is
                # safe to send once more, on a new connection.
                response = self._http.request(
                    method, path, params=params, json=body, headers=headers, **extra
                )
        except httpx.HTTPError as exc:
            raise ApiUnavailableError(f"cannot reach the API at {self.base_url}: {exc}") from exc
        if response.status_code == 401:
            raise UnauthorizedError(UNAUTHORIZED_TEXT, status_code=401)
        if response.status_code == 403:
            raise ForbiddenError(
                f"your role may not do this ({method} {path}): {_detail(response)}",
                status_code=403,
            )
        if response.status_code == 404:
            raise NotFoundError(_detail(response), status_code=404)
        if response.status_code >= 400:
            raise ApiError(
                f"{method} {path} failed with {response.status_code}: {_detail(response)}",
                status_code=response.status_code,
            )
        return response

    @staticmethod
    def _json(response: httpx.Response, method: str, path: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(f"{method} {path} returned something that is not JSON") from exc

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        response = self._exchange(method, path, params, body, headers=headers,
                                  timeout_s=timeout_s)
        return self._json(response, method, path)

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> tuple[httpx.Response, Any]:
        """Like ``_request``, with the response too (its status and headers); 304 has no body."""
        response = self._exchange(method, path, params, headers=headers)
        return response, self._json(response, method, path)

    @staticmethod
    def _parse(model: type[_M], body: Any, what: str) -> _M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            # Without the input values: a body may carry a secret (a new token).
            errors = exc.errors(include_input=False, include_url=False)
            log.warning("API returned an invalid %s: %s", what, errors)
            raise ApiError(f"the API returned an invalid {what}: {errors[0]['msg']}") from None

    # -- machines ------------------------------------------------------------------------

    def list_machines(self, *, limit: int | None = None, offset: int = 0) -> Page[MachinePublic]:
        """Return one page of machines."""
        params = {"limit": limit or self.page_size, "offset": offset}
        body = self._request("GET", f"{API_PREFIX}/machines", params)
        return self._parse(Page[MachinePublic], body, "machine list")

    def all_machines(self) -> list[MachinePublic]:
        """Return every machine.

        The first call follows pages until the count is reached; later calls
        ask only for what changed since the last answer (``since`` its cursor,
        ``If-None-Match`` its ETag: 304 when nothing changed), when the API
        gives cursors, and page through again when it answers with a listing.
        """
        fleet, since = self._fleet, self._fleet_cursor
        if fleet is not None and since and self._fleet_changes(fleet, since):
            return sorted(fleet.values(), key=lambda m: m.id)
        machines: list[MachinePublic] = []
        cursor = etag = None
        for _ in range(MAX_PAGES):
            params = {"limit": self.page_size, "offset": len(machines)}
            response, body = self._send("GET", f"{API_PREFIX}/machines", params)
            page = self._parse(Page[MachinePublic], body, "machine list")
            if cursor is None and isinstance(body, dict):
                # The first page's state: changes after it are asked for next time,
                # which covers any that happened while the later pages were read.
                cursor, etag = body.get("cursor"), response.headers.get("etag")
            machines.extend(page.data)
            if not page.data or len(machines) >= page.count:
                self._fleet = {m.id: m for m in machines}
                self._fleet_cursor = cursor if isinstance(cursor, str) else None
                self._fleet_etag = etag
                return machines
        raise ApiError(f"the machine list did not end after {MAX_PAGES} pages")

    def _fleet_changes(self, fleet: dict[str, MachinePublic], since: str) -> bool:
        """Apply to ``fleet`` what changed since ``since``; False: a whole listing is needed."""
        headers = {"If-None-Match": self._fleet_etag} if self._fleet_etag else None
        response, body = self._send("GET", f"{API_PREFIX}/machines", {"since": since},
                                    headers=headers)
        if response.status_code == 304:
            return True
        if not isinstance(body, dict) or body.get("full") is not False:
            return False
        delta = self._parse(FleetChanges, body, "machine changes")
        for machine in delta.data:
            fleet[machine.id] = machine
        for gone in delta.removed:
            fleet.pop(gone, None)
        self._fleet_cursor, self._fleet_etag = delta.cursor, response.headers.get("etag")
        return True

    def machine(self, machine_id: str) -> MachineDetail:
        """Return one machine with its recent events; raise ``NotFoundError`` if unknown."""
        body = self._request("GET", f"{API_PREFIX}/machines/{machine_id}")
        return self._parse(MachineDetail, body, "machine")

    def record_restock_visit(
        self,
        machine_id: str,
        counts: dict[int, int],
        *,
        counted_before: dict[int, int] | None = None,
    ) -> RestockVisitPublic:
        """Record a visit that left ``counts`` (slot -> items); who is the token's principal."""
        body: dict[str, Any] = {"counts": {str(k): v for k, v in counts.items()}}
        if counted_before is not None:
            body["counted_before"] = {str(k): v for k, v in counted_before.items()}
        raw = self._request(
            "POST", f"{API_PREFIX}/machines/{machine_id}/restock-visits", body=body
        )
        return self._parse(RestockVisitPublic, raw, "restock visit")

    # -- restock plans and visits -------------------------------------------------------

    def restock_plan(
        self,
        *,
        depot: str,
        shift_start: datetime | None = None,
        shift_hours: float = 8.0,
        vans: int = 1,
    ) -> RestockPlan:
        """Return the vans' routes for one shift from ``depot`` (``LAT,LON``)."""
        params = _shift_fields(depot, shift_start, shift_hours, vans)
        body = self._request("GET", f"{API_PREFIX}/restock/plan", params,
                             timeout_s=PLAN_TIMEOUT_S)
        return self._parse(RestockPlan, body, "restock plan")

    def issue_restock_plan(
        self,
        *,
        depot: str,
        shift_start: datetime | None = None,
        shift_hours: float = 8.0,
        vans: int = 1,
    ) -> IssuedPlan:
        """Plan a shift and issue it: its stops become the machines' next planned visits."""
        body = _shift_fields(depot, shift_start, shift_hours, vans)
        raw = self._request("POST", f"{API_PREFIX}/restock/plans", body=body,
                            timeout_s=PLAN_TIMEOUT_S)
        return self._parse(IssuedPlan, raw, "issued plan")

    def issued_plan(self, plan_id: int) -> IssuedPlan:
        """Return an issued plan by its id (what a van crew opens from a shared link)."""
        raw = self._request("GET", f"{API_PREFIX}/restock/plans/{plan_id}")
        return self._parse(IssuedPlan, raw, "issued plan")

    def record_visit(self, visit: dict[str, Any], *, idempotency_key: str) -> VisitRecorded:
        """Record a visit (``POST /api/v1/visits``); a retry with the same key records it once."""
        raw = self._request("POST", f"{API_PREFIX}/visits", body=visit,
                            headers={"Idempotency-Key": idempotency_key})
        return self._parse(VisitRecorded, raw, "visit")

    # -- machines: registration, edits, commands (admin) ---------------------------------

    def register_device(self, device: dict[str, Any]) -> DeviceCredential:
        """Register a machine with a broker password (admin, provisioning); shown once."""
        raw = self._request("POST", f"{API_PREFIX}/devices", body=device)
        return self._parse(DeviceCredential, raw, "device credential")

    def update_machine(self, machine_id: str, changes: dict[str, Any]) -> MachinePublic:
        """Change a machine's name, site or location (admin); return the machine."""
        raw = self._request("PATCH", f"{API_PREFIX}/machines/{machine_id}", body=changes)
        return self._parse(MachinePublic, raw, "machine")

    def send_command(self, machine_id: str, command: dict[str, Any]) -> MachineCommand:
        """Send a command to a machine (admin); it stays pending until the machine answers."""
        raw = self._request("POST", f"{API_PREFIX}/machines/{machine_id}/commands", body=command)
        return self._parse(MachineCommand, raw, "command")

    def commands(self, machine_id: str, *, limit: int = 20) -> Page[MachineCommand]:
        """Return a machine's latest commands, newest first, with their state (admin)."""
        body = self._request("GET", f"{API_PREFIX}/machines/{machine_id}/commands",
                             {"limit": limit})
        return self._parse(Page[MachineCommand], body, "command list")

    # -- alerts --------------------------------------------------------------------------

    def alerts(
        self,
        *,
        status: AlertStatus | None = AlertStatus.OPEN,
        alert_type: str | None = None,
        machine_id: str | None = None,
    ) -> Page[AlertPublic]:
        """Return alerts filtered by status, type and machine."""
        params: dict[str, Any] = {"limit": self.page_size}
        if status is not None:
            params["status"] = status.value
        if alert_type:
            params["type"] = alert_type
        if machine_id:
            params["machine_id"] = machine_id
        body = self._request("GET", f"{API_PREFIX}/alerts", params)
        return self._parse(Page[AlertPublic], body, "alert list")

    # An empty JSON object, not an empty body: writes accept only application/json.
    def acknowledge_alert(self, alert_id: int | str) -> None:
        """Mark an alert as seen; the API records the signed-in principal as who."""
        self._request("POST", f"{API_PREFIX}/alerts/{alert_id}/acknowledge", body={})

    def resolve_alert(self, alert_id: int | str) -> None:
        """Close an alert; the API records the signed-in principal as who."""
        self._request("POST", f"{API_PREFIX}/alerts/{alert_id}/resolve", body={})

    # -- who am I, tokens ----------------------------------------------------------------

    def me(self) -> Identity:
        """Return who the API takes this client's token for; ``UnauthorizedError`` if nobody."""
        body = self._request("GET", f"{API_PREFIX}/auth/me")
        return self._parse(Identity, body, "identity")

    def tokens(self, *, include_revoked: bool = False) -> Page[TokenPublic]:
        """Return the API tokens by name (admin), never the tokens themselves."""
        params = {"include_revoked": "true" if include_revoked else "false"}
        body = self._request("GET", f"{API_PREFIX}/tokens", params)
        return self._parse(Page[TokenPublic], body, "token list")

    def create_token(
        self,
        *,
        name: str,
        role: str,
        areas: list[str] | None = None,
        expires_in: str | None = None,
    ) -> TokenCreated:
        """Create an API token (admin); the result carries the secret this once."""
        body: dict[str, Any] = {"name": name, "role": role, "areas": areas or []}
        if expires_in:
            body["expires_in"] = expires_in
        raw = self._request("POST", f"{API_PREFIX}/tokens", body=body)
        return self._parse(TokenCreated, raw, "new token")

    def revoke_token(self, name: str) -> TokenPublic:
        """Revoke the live token called ``name`` (admin)."""
        raw = self._request("POST", f"{API_PREFIX}/tokens/{quote(name, safe='')}/revoke", body={})
        return self._parse(TokenPublic, raw, "revoked token")

    # -- audit trail ---------------------------------------------------------------------

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
        """Return one page of the audit trail (admin), newest first."""
        filters = {"actor": actor, "action": action, "object_type": object_type,
                   "object_id": object_id}
        params: dict[str, Any] = {k: v for k, v in filters.items() if v}
        params.update(limit=limit, offset=offset)
        body = self._request("GET", f"{API_PREFIX}/audit", params)
        return self._parse(Page[AuditRecord], body, "audit page")

    # -- notifications -------------------------------------------------------------------

    def notification_routes(self) -> Page[NotificationRoute]:
        """Return every notification route (admin)."""
        body = self._request("GET", f"{API_PREFIX}/notification-routes")
        return self._parse(Page[NotificationRoute], body, "notification routes")

    def create_notification_route(self, route: dict[str, Any]) -> NotificationRoute:
        """Create a notification route from the API's fields (admin)."""
        raw = self._request("POST", f"{API_PREFIX}/notification-routes", body=route)
        return self._parse(NotificationRoute, raw, "new notification route")

    def delete_notification_route(self, route_id: int) -> None:
        """Delete a notification route (admin); its deliveries stay listed."""
        self._request("DELETE", f"{API_PREFIX}/notification-routes/{route_id}")

    def test_notification_route(self, route_id: int) -> Delivery:
        """Queue a test message to a route (admin); return its delivery."""
        raw = self._request("POST", f"{API_PREFIX}/notification-routes/{route_id}/test",
                            body={})
        return self._parse(Delivery, raw, "test delivery")

    def notifications(
        self, *, state: str | None = None, route_id: int | None = None, limit: int = 100,
        offset: int = 0,
    ) -> Page[Delivery]:
        """Return one page of deliveries, newest first, with attempts and last error (admin)."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        if route_id is not None:
            params["route_id"] = route_id
        body = self._request("GET", f"{API_PREFIX}/notifications", params)
        return self._parse(Page[Delivery], body, "deliveries")

    # -- hotspots ------------------------------------------------------------------------

    def hotspots(self, *, include_resolved: bool = False) -> HotspotCollection:
        """Return the current (with ``include_resolved``, also the closed) hotspot areas."""
        params = {"include_resolved": "true"} if include_resolved else None
        body = self._request("GET", f"{API_PREFIX}/hotspots", params)
        return self._parse(HotspotCollection, body, "hotspot collection")

    # -- areas and their dispenses -------------------------------------------------------

    def areas(self) -> AreaCollection:
        """Return the named areas' outlines and names (GeoJSON)."""
        body = self._request("GET", f"{API_PREFIX}/areas")
        return self._parse(AreaCollection, body, "area collection")

    def dispenses_by_area(self, first: date, last: date) -> AreaCollection:
        """Return naloxone dispenses per area from ``first`` to ``last``, small counts suppressed.

        The backend's export does the suppression (and its complement), so the
        console never sees a count it may not show.
        """
        params = {"from": first.isoformat(), "to": last.isoformat(), "period": "week"}
        body = self._request("GET", f"{API_PREFIX}/exports/dispenses.geojson", params)
        return self._parse(AreaCollection, body, "dispenses by area")

    def hotspot_series(self, alert_id: int | str) -> HotspotSeries:
        """Return a hotspot's daily dispenses against its expected level."""
        body = self._request("GET", f"{API_PREFIX}/hotspots/{alert_id}/series")
        return self._parse(HotspotSeries, body, "hotspot series")

    # -- statistics ----------------------------------------------------------------------

    def dispense_stats(
        self,
        *,
        first: date,
        last: date,
        bucket: str = "week",
        group: str = "area",
        products: list[str] | None = None,
    ) -> DispenseStats:
        """Return dispenses per bucket and group from day ``first`` to day ``last``."""
        params: dict[str, Any] = {"from": first.isoformat(), "to": last.isoformat(),
                                  "bucket": bucket, "group": group}
        if products:
            params["product"] = products
        body = self._request("GET", f"{API_PREFIX}/stats/dispenses", params)
        return self._parse(DispenseStats, body, "dispense statistics")

    def stats_today(self) -> StatsToday:
        """Return the day the backend's statistics count "today" as (its clock, not ours)."""
        body = self._request("GET", f"{API_PREFIX}/stats/today")
        return self._parse(StatsToday, body, "statistics day")

    # -- machine history -----------------------------------------------------------------

    def temperatures(self, machine_id: str, *, hours: int = 168) -> TemperatureHistory:
        """Return a machine's temperature over the last ``hours``."""
        body = self._request("GET", f"{API_PREFIX}/machines/{machine_id}/temperatures",
                             {"hours": hours})
        return self._parse(TemperatureHistory, body, "temperature history")

    def stock_history(self, machine_id: str, *, days: int = 14) -> StockHistory:
        """Return each slot's count over the last ``days``."""
        body = self._request("GET", f"{API_PREFIX}/machines/{machine_id}/stock-history",
                             {"days": days})
        return self._parse(StockHistory, body, "stock history")

    def discrepancies(self, machine_id: str, *, limit: int = 100) -> Page[Discrepancy]:
        """Return a machine's stock discrepancies, newest first."""
        body = self._request("GET", f"{API_PREFIX}/machines/{machine_id}/discrepancies",
                             {"limit": limit})
        return self._parse(Page[Discrepancy], body, "discrepancies")

    # -- service -------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Return whether ``/healthz`` answers without an error."""
        try:
            self._request("GET", "/healthz")
        except ApiError:
            return False
        return True

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _shift_fields(depot: str, shift_start: datetime | None, shift_hours: float,
                  vans: int) -> dict[str, Any]:
    """The shift as the plan routes take it: query parameters to preview, a body to issue."""
    fields: dict[str, Any] = {"depot": depot, "shift_hours": shift_hours, "vans": vans}
    if shift_start is not None:
        fields["shift_start"] = shift_start.isoformat()
    return fields
