"""The one seam between pages and the network: the API client of this browser session."""

from __future__ import annotations

from typing import Protocol

import streamlit as st

from console.api_models import (
    AlertPublic,
    AlertStatus,
    HotspotCollection,
    MachineDetail,
    MachinePublic,
    Page,
    RestockVisitPublic,
)
from console.client import ApiClient
from console.settings import get_settings

_CLIENT_KEY = "nx_api_client"


class ConsoleApi(Protocol):
    """What pages may ask of the backend (``ApiClient`` implements it)."""

    def all_machines(self) -> list[MachinePublic]:
        """Return every machine."""
        ...

    def machine(self, machine_id: str) -> MachineDetail:
        """Return one machine."""
        ...

    def alerts(
        self,
        *,
        status: AlertStatus | None = AlertStatus.OPEN,
        alert_type: str | None = None,
        machine_id: str | None = None,
    ) -> Page[AlertPublic]:
        """Return alerts."""
        ...

    def record_restock_visit(
        self,
        machine_id: str,
        counts: dict[int, int],
        *,
        counted_before: dict[int, int] | None = ...,
        by: str = ...,
    ) -> RestockVisitPublic:
        """Record a restock visit."""
        ...

    def hotspots(self) -> HotspotCollection:
        """Return current hotspot areas."""
        ...

    def acknowledge_alert(self, alert_id: int | str, *, by: str = ...) -> None:
        """Acknowledge an alert."""
        ...

    def resolve_alert(self, alert_id: int | str, *, by: str = ...) -> None:
        """Resolve an alert."""
        ...


def make_client() -> ConsoleApi:
    """Build the client from settings; tests replace this function."""
    return ApiClient.from_settings(get_settings())


def api() -> ConsoleApi:
    """Return this session's client, creating it on first use."""
    if _CLIENT_KEY not in st.session_state:
        st.session_state[_CLIENT_KEY] = make_client()
    client: ConsoleApi = st.session_state[_CLIENT_KEY]
    return client


def refresh_s() -> float:
    """Return how often live tiles redraw."""
    return get_settings().refresh_s
