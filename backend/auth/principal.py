"""Who is calling: the roles and the authenticated principal."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """What a principal may do (see backend/api/policy.py for the routes of each)."""

    ADMIN = "admin"
    OUTREACH = "outreach"
    HEALTH = "health"
    PROVISIONING = "provisioning"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API token's name or an OIDC subject, with its role."""

    name: str
    role: Role
    # Empty: unrestricted; otherwise only machines (and their alerts) in these areas.
    areas: frozenset[str] = field(default_factory=frozenset)
    source: str = "token"  # "token" | "oidc"

    @property
    def area_limited(self) -> bool:
        """Say whether this principal sees only some areas."""
        return bool(self.areas)
