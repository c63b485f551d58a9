"""The console's only way to the backend: a typed HTTP client of the ``/api/v1`` API."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from console.api_models import (
    AlertPublic,
    AlertStatus,
    HotspotCollection,
    MachineDetail,
    MachinePublic,
    Page,
    RestockVisitPublic,
)
from console.settings import ConsoleSettings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_PAGES = 1_000
"""Stop paging after this many pages: a backend that never ends a list is a bug, not a fleet."""

ACTOR = "console"
"""Who the console says acted on an alert, unless told otherwise."""

_M = TypeVar("_M", bound=BaseModel)


class ApiError(RuntimeError):
    """The API answered with an error or with JSON that breaks the contract."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ApiUnavailableError(ApiError):
    """The API could not be reached at all."""


class NotFoundError(ApiError):
    """The API answered 404."""


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
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
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    @classmethod
    def from_settings(cls, settings: ConsoleSettings) -> ApiClient:
        """Build a client from console settings."""
        token = settings.api_token.get_secret_value() if settings.api_token else None
        return cls(
            settings.api_url,
            token=token,
            timeout_s=settings.http_timeout_s,
            page_size=settings.page_size,
        )

    # -- transport -----------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        try:
            response = self._http.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:
            raise ApiUnavailableError(f"cannot reach the API at {self.base_url}: {exc}") from exc
        if response.status_code == 404:
            raise NotFoundError(_detail(response), status_code=404)
        if response.status_code >= 400:
            raise ApiError(
                f"{method} {path} failed with {response.status_code}: {_detail(response)}",
                status_code=response.status_code,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(f"{method} {path} returned something that is not JSON") from exc

    @staticmethod
    def _parse(model: type[_M], body: Any, what: str) -> _M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            log.warning("API returned an invalid %s: %s", what, exc)
            raise ApiError(f"the API returned an invalid {what}: {exc.errors()[0]['msg']}") from exc

    # -- machines ------------------------------------------------------------------------

    def list_machines(self, *, limit: int | None = None, offset: int = 0) -> Page[MachinePublic]:
        """Return one page of machines."""
        params = {"limit": limit or self.page_size, "offset": offset}
        body = self._request("GET", f"{API_PREFIX}/machines", params)
        return self._parse(Page[MachinePublic], body, "machine list")

    def all_machines(self) -> list[MachinePublic]:
        """Return every machine, following pages until the count is reached."""
        machines: list[MachinePublic] = []
        for _ in range(MAX_PAGES):
            page = self.list_machines(offset=len(machines))
            machines.extend(page.data)
            if not page.data or len(machines) >= page.count:
                return machines
        raise ApiError(f"the machine list did not end after {MAX_PAGES} pages")

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
        by: str = ACTOR,
    ) -> RestockVisitPublic:
        """Record a visit that left ``counts`` (slot -> items) in the machine."""
        body: dict[str, Any] = {
            "counts": {str(k): v for k, v in counts.items()},
            "visited_by": by,
        }
        if counted_before is not None:
            body["counted_before"] = {str(k): v for k, v in counted_before.items()}
        raw = self._request(
            "POST", f"{API_PREFIX}/machines/{machine_id}/restock-visits", body=body
        )
        return self._parse(RestockVisitPublic, raw, "restock visit")

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

    def acknowledge_alert(self, alert_id: int | str, *, by: str = ACTOR) -> None:
        """Mark an alert as seen by ``by`` (a team or role, never a person's identity)."""
        self._request("POST", f"{API_PREFIX}/alerts/{alert_id}/acknowledge", body={"by": by})

    def resolve_alert(self, alert_id: int | str, *, by: str = ACTOR) -> None:
        """Close an alert on behalf of ``by``."""
        self._request("POST", f"{API_PREFIX}/alerts/{alert_id}/resolve", body={"by": by})

    # -- hotspots ------------------------------------------------------------------------

    def hotspots(self) -> HotspotCollection:
        """Return the current overdose-hotspot areas (GeoJSON)."""
        body = self._request("GET", f"{API_PREFIX}/hotspots")
        return self._parse(HotspotCollection, body, "hotspot collection")

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
