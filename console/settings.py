"""Console settings: where the backend's API is, how to sign in, how often tiles refresh."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_PORT = 8501


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


@lru_cache(maxsize=1)
def get_settings() -> ConsoleSettings:
    """Return the process-wide settings (tests build ``ConsoleSettings`` directly)."""
    return ConsoleSettings()
