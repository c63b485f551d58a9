"""Which page files the navigation lists for a role (pure: tested without Streamlit)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from console import roles
from console.roles import PageKey, Role

VIEWS: Final = Path(__file__).resolve().parent / "views"
SIGN_IN_FILE: Final = VIEWS / "sign_in.py"


@dataclass(frozen=True, slots=True)
class PageSpec:
    """One page of the navigation."""

    key: PageKey
    file: Path
    title: str
    icon: str
    url_path: str


# Material Symbols, not emoji: Streamlit ships the font, so the icons draw offline and in
# a browser without an emoji font (headless Chromium showed emoji as empty boxes); the
# title beside each says what the page is.
PAGE_SPECS: Final[dict[PageKey, PageSpec]] = {
    spec.key: spec
    for spec in (
        PageSpec(PageKey.FLEET_MAP, VIEWS / "fleet_map.py", "Fleet map",
                 ":material/map:", "map"),
        PageSpec(PageKey.ALERTS, VIEWS / "alerts.py", "Alerts",
                 ":material/warning:", "alerts"),
        PageSpec(PageKey.HOTSPOTS, VIEWS / "hotspots.py", "Hotspots",
                 ":material/my_location:", "hotspots"),
        PageSpec(PageKey.TRENDS, VIEWS / "trends.py", "Trends",
                 ":material/trending_up:", "trends"),
        PageSpec(PageKey.RESTOCK, VIEWS / "restock.py", "Restock",
                 ":material/local_shipping:", "restock"),
        PageSpec(PageKey.MACHINE, VIEWS / "machine.py", "Machine detail",
                 ":material/search:", "machine"),
        PageSpec(PageKey.TOKENS, VIEWS / "tokens.py", "API tokens",
                 ":material/key:", "tokens"),
        PageSpec(PageKey.AUDIT, VIEWS / "audit.py", "Audit trail",
                 ":material/history:", "audit"),
        PageSpec(PageKey.NOTIFICATIONS, VIEWS / "notifications.py", "Notifications",
                 ":material/campaign:", "notifications"),
        PageSpec(PageKey.ADMIN, VIEWS / "admin.py", "Machines admin",
                 ":material/build:", "admin"),
        PageSpec(PageKey.ACCOUNT, VIEWS / "account.py", "Account",
                 ":material/person:", "account"),
    )
}


def pages_for(role: Role | None) -> list[PageSpec]:
    """Return the pages listed for ``role``, the default first; an unknown role gets its account."""
    keys = roles.pages_for(role) if role is not None else [PageKey.ACCOUNT]
    return [PAGE_SPECS[key] for key in keys]
