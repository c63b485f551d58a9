"""Console settings: where the backend's API is, how to sign in, how often tiles refresh."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_PORT = 8501
DEPOT_PATTERN = r"^\s*-?\d{1,3}(\.\d{1,12})?\s*,\s*-?\d{1,3}(\.\d{1,12})?\s*$"
"""``LAT,LON`` in decimal degrees, as the restock plan's ``depot`` parameter takes it."""


class ConsoleSettings(BaseSettings):
    """Settings read from ``NX_CONSOLE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="NX_CONSOLE_", extra="ignore")

    api_url: str = DEFAULT_API_URL
    api_token: SecretStr | None = None
    """A preset token: every browser session starts signed in with it (kiosk, demo)."""
    oidc_provider: str | None = None
    """Offer single sign-on through Streamlit's login: the provider under ``[auth]`` in
    .streamlit/secrets.toml, or ``default`` for an unnamed one."""
    # The console is read-mostly; a slow API should show a clear error, not a hung page.
    http_timeout_s: float = Field(default=5.0, gt=0)
    # Live tiles redraw this often; a fleet map does not need more than a few seconds.
    refresh_s: float = Field(default=5.0, ge=0.5)
    page_size: int = Field(default=500, ge=1, le=10_000)
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    address: str = "127.0.0.1"
    # The restock page's defaults (a worker may change them on the page).
    depot: str | None = Field(default=None, pattern=DEPOT_PATTERN)
    """Where the vans load, ``LAT,LON``; unset: the middle of the fleet."""
    shift_hours: float = Field(default=8.0, ge=0.25, le=24)
    vans: int = Field(default=1, ge=1, le=50)
    timezone: str = "UTC"
    """The zone arrival times are shown in (an IANA name such as America/New_York)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


@lru_cache(maxsize=1)
def get_settings() -> ConsoleSettings:
    """Return the process-wide settings (tests build ``ConsoleSettings`` directly)."""
    return ConsoleSettings()
