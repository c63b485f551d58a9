"""The one seam between pages and the network: who is signed in, and their API client.

The token lives only in ``st.session_state`` (inside the client's headers):
never on disk, in the URL or in a log line. A browser session signs in with a
token typed on the sign-in page, with the preset ``NX_CONSOLE_API_TOKEN``
(kiosk and demo), or with the access token of Streamlit's own OIDC login.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import streamlit as st

from console import roles
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
from console.client import ApiClient, ApiError, UnauthorizedError
from console.roles import Action, Role
from console.settings import get_settings

log = logging.getLogger(__name__)

_SIGNED_IN_KEY = "nx_signed_in"
_CLIENT_KEY = "nx_api_client"
_NOTICE_KEY = "nx_sign_in_notice"
_PRESET_TRIED_KEY = "nx_preset_tried"
_OIDC_TRIED_KEY = "nx_oidc_tried"

VIA_TOKEN = "token"  # noqa: S105 - how one signed in, not a secret
VIA_PRESET = "preset token"
VIA_OIDC = "single sign-on"

EXPIRED_NOTICE = (
    "Your session ended: the API refused the token (expired or revoked). Sign in again."
)
SSO_WITHOUT_ACCESS_NOTICE = (
    "Single sign-on succeeded, but Streamlit did not hand the console an access token "
    'for the API: set expose_tokens = "access" in the [auth] section of .streamlit/secrets.toml.'
)


class ConsoleApi(Protocol):
    """What pages may ask of the backend (``ApiClient`` implements it)."""

    def me(self) -> Identity:
        """Return who the API takes the token for."""
        ...

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
    ) -> RestockVisitPublic:
        """Record a restock visit."""
        ...

    def restock_plan(
        self,
        *,
        depot: str,
        shift_start: datetime | None = ...,
        shift_hours: float = ...,
        vans: int = ...,
    ) -> RestockPlan:
        """Return the vans' routes for one shift."""
        ...

    def issue_restock_plan(
        self,
        *,
        depot: str,
        shift_start: datetime | None = ...,
        shift_hours: float = ...,
        vans: int = ...,
    ) -> IssuedPlan:
        """Plan a shift and issue it."""
        ...

    def issued_plan(self, plan_id: int) -> IssuedPlan:
        """Return an issued plan."""
        ...

    def record_visit(self, visit: dict[str, Any], *, idempotency_key: str) -> VisitRecorded:
        """Record a restock visit once per idempotency key."""
        ...

    def register_device(self, device: dict[str, Any]) -> DeviceCredential:
        """Register a machine with a broker password."""
        ...

    def update_machine(self, machine_id: str, changes: dict[str, Any]) -> MachinePublic:
        """Change a machine's name, site or location."""
        ...

    def send_command(self, machine_id: str, command: dict[str, Any]) -> MachineCommand:
        """Send a command to a machine."""
        ...

    def commands(self, machine_id: str, *, limit: int = ...) -> Page[MachineCommand]:
        """Return a machine's latest commands."""
        ...

    def hotspots(self, *, include_resolved: bool = ...) -> HotspotCollection:
        """Return hotspot areas."""
        ...

    def hotspot_series(self, alert_id: int | str) -> HotspotSeries:
        """Return a hotspot's daily series."""
        ...

    def dispense_stats(
        self,
        *,
        first: date,
        last: date,
        bucket: str = ...,
        group: str = ...,
        products: list[str] | None = ...,
    ) -> DispenseStats:
        """Return dispense counts."""
        ...

    def temperatures(self, machine_id: str, *, hours: int = ...) -> TemperatureHistory:
        """Return a machine's temperature history."""
        ...

    def stock_history(self, machine_id: str, *, days: int = ...) -> StockHistory:
        """Return a machine's stock history."""
        ...

    def discrepancies(self, machine_id: str, *, limit: int = ...) -> Page[Discrepancy]:
        """Return a machine's stock discrepancies."""
        ...

    def areas(self) -> AreaCollection:
        """Return the named areas' outlines."""
        ...

    def dispenses_by_area(self, first: date, last: date) -> AreaCollection:
        """Return dispenses per area, small counts suppressed by the backend."""
        ...

    def stats_today(self) -> StatsToday:
        """Return the day the backend's statistics end "today" on."""
        ...

    def acknowledge_alert(self, alert_id: int | str) -> None:
        """Acknowledge an alert."""
        ...

    def resolve_alert(self, alert_id: int | str) -> None:
        """Resolve an alert."""
        ...

    def tokens(self, *, include_revoked: bool = ...) -> Page[TokenPublic]:
        """Return the API tokens."""
        ...

    def create_token(
        self,
        *,
        name: str,
        role: str,
        areas: list[str] | None = ...,
        expires_in: str | None = ...,
    ) -> TokenCreated:
        """Create an API token."""
        ...

    def revoke_token(self, name: str) -> TokenPublic:
        """Revoke an API token."""
        ...

    def audit(
        self,
        *,
        actor: str | None = ...,
        action: str | None = ...,
        object_type: str | None = ...,
        object_id: str | None = ...,
        limit: int = ...,
        offset: int = ...,
    ) -> Page[AuditRecord]:
        """Return one page of the audit trail."""
        ...

    def notification_routes(self) -> Page[NotificationRoute]:
        """Return the notification routes."""
        ...

    def create_notification_route(self, route: dict[str, Any]) -> NotificationRoute:
        """Create a notification route."""
        ...

    def delete_notification_route(self, route_id: int) -> None:
        """Delete a notification route."""
        ...

    def test_notification_route(self, route_id: int) -> Delivery:
        """Queue a test message to a route."""
        ...

    def notifications(
        self, *, state: str | None = ..., route_id: int | None = ..., limit: int = ...,
        offset: int = ...,
    ) -> Page[Delivery]:
        """Return one page of deliveries."""
        ...


@dataclass(frozen=True)
class SignedIn:
    """Who this browser session is signed in as (no secret in here)."""

    identity: Identity
    role: Role | None
    """None for a role this console does not know: it then shows only the account page."""
    via: str


def make_client(token: str) -> ConsoleApi:
    """Build a client that sends ``token``; tests replace this function."""
    return ApiClient.from_settings(get_settings(), token)


def preset_token() -> str | None:
    """Return ``NX_CONSOLE_API_TOKEN`` if set (kiosk and demo consoles sign in with it)."""
    secret = get_settings().api_token
    value = secret.get_secret_value().strip() if secret is not None else ""
    return value or None


def oidc_provider() -> str | None:
    """Return the Streamlit login provider to offer, if single sign-on is configured."""
    return get_settings().oidc_provider


def oidc_access_token(user: Mapping[str, Any]) -> str | None:
    """Return the access token Streamlit's login exposes in ``st.user``, if any."""
    if not user.get("is_logged_in"):
        return None
    tokens = user.get("tokens")
    if not isinstance(tokens, Mapping):
        return None
    access = tokens.get("access")
    return access if isinstance(access, str) and access else None


def sign_in(token: str, via: str) -> SignedIn:
    """Check ``token`` with ``GET /api/v1/auth/me`` and keep it for this session; raise ApiError."""
    client = make_client(token)
    try:
        identity = client.me()
    except ApiError:
        _close(client)
        raise
    _forget_client()
    signed_in = SignedIn(identity=identity, role=roles.parse_role(identity.role), via=via)
    st.session_state[_CLIENT_KEY] = client
    st.session_state[_SIGNED_IN_KEY] = signed_in
    st.session_state.pop(_NOTICE_KEY, None)
    # The name and role only: the token itself never reaches a log line.
    log.info("console signed in as %s (%s) via %s", identity.name, identity.role, via)
    return signed_in


def sign_out(notice: str | None = None) -> None:
    """Forget the token and the identity; ``notice`` is shown on the sign-in page."""
    _forget_client()
    st.session_state.pop(_SIGNED_IN_KEY, None)
    # A signed-out kiosk stays signed out until a new browser session.
    st.session_state[_PRESET_TRIED_KEY] = True
    st.session_state[_OIDC_TRIED_KEY] = True
    if notice:
        st.session_state[_NOTICE_KEY] = notice


def current() -> SignedIn | None:
    """Return who is signed in, first trying the preset token and single sign-on once."""
    signed_in: SignedIn | None = st.session_state.get(_SIGNED_IN_KEY)
    if signed_in is not None:
        return signed_in
    if not st.session_state.get(_PRESET_TRIED_KEY):
        st.session_state[_PRESET_TRIED_KEY] = True
        token = preset_token()
        if token is not None:
            signed_in = _try_sign_in(token, VIA_PRESET, "The preset token (NX_CONSOLE_API_TOKEN)")
            if signed_in is not None:
                return signed_in
    if not st.session_state.get(_OIDC_TRIED_KEY) and st.user.get("is_logged_in"):
        st.session_state[_OIDC_TRIED_KEY] = True
        access = oidc_access_token(st.user)
        if access is None:
            st.session_state[_NOTICE_KEY] = SSO_WITHOUT_ACCESS_NOTICE
            return None
        return _try_sign_in(access, VIA_OIDC, "The single sign-on access token")
    return None


def _try_sign_in(token: str, via: str, what: str) -> SignedIn | None:
    try:
        return sign_in(token, via)
    except ApiError as exc:
        st.session_state[_NOTICE_KEY] = f"{what} was not accepted: {exc}"
        return None


def take_notice() -> str | None:
    """Return (and forget) why the sign-in page is shown, if there is a reason."""
    notice: str | None = st.session_state.pop(_NOTICE_KEY, None)
    return notice


def signed_in_role() -> Role | None:
    """Return the signed-in role, or None."""
    signed_in = current()
    return signed_in.role if signed_in is not None else None


def may(action: Action) -> bool:
    """Say whether the signed-in role may take ``action`` (the API refuses anyway)."""
    role = signed_in_role()
    return role is not None and roles.may(role, action)


def may_act_on_alert(alert: AlertPublic) -> bool:
    """Say whether the signed-in role may acknowledge or resolve ``alert``."""
    role = signed_in_role()
    return role is not None and roles.may_act_on_alert(role, alert.machine_id)


def api() -> ConsoleApi:
    """Return this session's client; pages run only when signed in."""
    client: ConsoleApi | None = st.session_state.get(_CLIENT_KEY)
    if client is None:
        raise RuntimeError("no API client: the session is not signed in")
    return client


def statistics_day(api: ConsoleApi) -> date:
    """Return the last day of periods ending "today": the backend's, not this machine's.

    Under the backend's data clock (a replay, the accelerated demo) that is the
    newest dispense's day, weeks away from the wall clock's. A backend that
    cannot say (an older one) leaves the wall clock's day.
    """
    try:
        return api.stats_today().today
    except ApiError as exc:
        log.info("statistics day unavailable (%s); counting to today", exc)
        return date.today()


def report(exc: ApiError, what: str) -> None:
    """Show an API error; a refused token ends the session and returns to the sign-in page."""
    if isinstance(exc, UnauthorizedError):
        sign_out(EXPIRED_NOTICE)
        st.rerun()
    st.error(f"{what}: {exc}")


def refresh_s() -> float:
    """Return how often live tiles redraw."""
    return get_settings().refresh_s


def _forget_client() -> None:
    client = st.session_state.pop(_CLIENT_KEY, None)
    if client is not None:
        _close(client)


def _close(client: object) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()
