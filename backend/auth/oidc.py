"""OpenID Connect access tokens (JWT) from one configured issuer.

Signatures are checked with PyJWT against the issuer's JWKS. PyJWKClient keeps
the key set for ``oidc_jwks_cache_s`` and, when a token names a key it does
not know (the issuer rotated its keys), fetches the set again at most once per
``oidc_jwks_refresh_min_s``, so that made-up key ids cannot make us hammer the
issuer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
import jwt

from backend.auth.principal import Principal, Role
from backend.config import Settings

log = logging.getLogger(__name__)

ROLE_PRECEDENCE = (Role.ADMIN, Role.OUTREACH, Role.HEALTH, Role.PROVISIONING)
"""Which role wins when someone's groups map to several."""

FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
"""Never accepted: no signature, or a shared secret an issuer's JWKS cannot hold."""


class NoRoleError(Exception):
    """A valid token whose groups map to no NaloxNet role (a known caller: 403)."""

    def __init__(self, subject: str) -> None:
        super().__init__(f"{subject} has no NaloxNet role")
        self.subject = subject


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """Return a claim by dotted path (``realm_access.roles``), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def role_from_groups(groups: Any, mapping: Mapping[str, Role]) -> Role | None:
    """Return the role the groups map to (by ROLE_PRECEDENCE), or None."""
    if isinstance(groups, str):
        groups = groups.split()
    if not isinstance(groups, list):
        return None
    roles = {mapping[g] for g in groups if isinstance(g, str) and g in mapping}
    return next((r for r in ROLE_PRECEDENCE if r in roles), None)


class OidcVerifier:
    """Verify access tokens of one issuer and map them to principals."""

    def __init__(self, settings: Settings) -> None:
        if settings.oidc_issuer is None or settings.oidc_audience is None:
            raise ValueError("OIDC needs NX_OIDC_ISSUER and NX_OIDC_AUDIENCE")
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.role_claim = settings.oidc_role_claim
        self.name_claim = settings.oidc_name_claim
        self.role_map = dict(settings.oidc_role_map)
        self.algorithms = [a for a in settings.oidc_algorithms if a not in FORBIDDEN_ALGORITHMS]
        self.leeway_s = settings.oidc_leeway_s
        self._settings = settings
        self._jwks_url = settings.oidc_jwks_url
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()
        self._discovery_failed_at = float("-inf")

    def _discover(self) -> str:
        # The issuer's discovery document names its JWKS; ask again after a
        # failure no more often than keys are refreshed.
        now = time.monotonic()
        if now - self._discovery_failed_at < self._settings.oidc_jwks_refresh_min_s:
            raise jwt.PyJWKClientConnectionError("OIDC discovery failed recently")
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=self._settings.oidc_http_timeout_s)
            response.raise_for_status()
            jwks_uri = response.json()["jwks_uri"]
            if not isinstance(jwks_uri, str):
                raise TypeError("jwks_uri is not a string")
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self._discovery_failed_at = now
            log.warning("OIDC discovery at %s failed: %s", url, exc)
            raise jwt.PyJWKClientConnectionError("OIDC discovery failed") from None
        return jwks_uri

    def _jwks(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                url = self._jwks_url or self._discover()
                self._client = jwt.PyJWKClient(
                    url,
                    cache_jwk_set=True,
                    lifespan=self._settings.oidc_jwks_cache_s,
                    cooldown_duration=self._settings.oidc_jwks_refresh_min_s,
                    timeout=self._settings.oidc_http_timeout_s,
                )
            return self._client

    def verify(self, token: str) -> Principal | None:
        """Return a valid token's principal, else None; NoRoleError when it maps to no role."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.algorithms:
                log.info("OIDC token refused: algorithm %r not allowed", header.get("alg"))
                return None
            key = self._jwks().get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key=key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("OIDC keys unavailable: %s", exc.__class__.__name__)
            return None
        except jwt.PyJWTError as exc:
            # The reason only: the token itself is a credential and never logged.
            log.info("OIDC token refused: %s", exc.__class__.__name__)
            return None
        name = claim(claims, self.name_claim)
        if not isinstance(name, str) or not name or len(name) > 64:
            log.info("OIDC token refused: no usable %s claim", self.name_claim)
            return None
        role = role_from_groups(claim(claims, self.role_claim), self.role_map)
        if role is None:
            raise NoRoleError(name)
        return Principal(name=name, role=role, source="oidc")


def make_verifier(settings: Settings) -> OidcVerifier | None:
    """Return a verifier when OIDC is configured, else None."""
    return OidcVerifier(settings) if settings.oidc_issuer else None
