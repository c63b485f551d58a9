"""OIDC access tokens from a local issuer: its own RSA keys, discovery and JWKS on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from backend.app import create_app
from backend.config import Settings
from tests.backend.conftest import AuthHeaders, bearer
from tests.http_server import serve_http
from tests.waiting import wait_until

AUDIENCE = "naloxnet-api"
ROLE_MAP = {"epi": "health", "ops": "admin", "vans": "outreach"}


@dataclass
class Issuer:
    """A tiny OpenID provider: a discovery document and a JWKS that can rotate."""

    url: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    jwks_fetches: int = 0

    def add_key(self) -> str:
        kid = uuid.uuid4().hex[:8]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def jwks(self) -> dict[str, Any]:
        self.jwks_fetches += 1
        out = []
        for kid, key in self.keys.items():
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": out}

    def token(self, kid: str, *, key: rsa.RSAPrivateKey | None = None,
              **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": "dana@health.example",
                "iat": now, "exp": now + 300, "groups": ["epi"], **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    state = Issuer()
    state.add_key()
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, str]:
        return {"issuer": state.url, "jwks_uri": f"{state.url}/jwks"}

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return state.jwks()

    with serve_http(app) as url:
        state.url = url
        yield state


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """Sign by hand: PyJWT itself refuses to use a public key as an HMAC secret."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _api(migrated_url: str, issuer: Issuer, **overrides: Any) -> FastAPI:
    values: dict[str, Any] = {
        "environment": "test", "database_url": migrated_url, "oidc_issuer": issuer.url,
        "oidc_audience": AUDIENCE, "oidc_role_map": ROLE_MAP, **overrides}
    return create_app(Settings.model_validate(values))


def _me(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/api/v1/auth/me", headers=bearer(token), timeout=10)


def test_valid_token_maps_groups_to_a_role(migrated_url: str, issuer: Issuer,
                                           auth_headers: AuthHeaders) -> None:
    (kid,) = issuer.keys
    with serve_http(_api(migrated_url, issuer)) as url:
        me = _me(url, issuer.token(kid))
        assert me.status_code == 200, me.text
        assert me.json() == {"name": "dana@health.example", "role": "health", "areas": [],
                             "source": "oidc"}
        health = bearer(issuer.token(kid))
        assert httpx.get(f"{url}/api/v1/hotspots", headers=health, timeout=10).status_code == 200
        assert httpx.get(f"{url}/api/v1/tokens", headers=health, timeout=10).status_code == 403
        both = issuer.token(kid, groups=["vans", "ops", "unrelated"])
        assert _me(url, both).json()["role"] == "admin"
        spaced = issuer.token(kid, groups="unrelated vans")
        assert _me(url, spaced).json()["role"] == "outreach"
        roleless = _me(url, issuer.token(kid, groups=["staff"]))
        assert roleless.status_code == 403
        # API tokens still work next to OIDC.
        assert _me(url, auth_headers("admin")["Authorization"][7:]).json()["source"] == "token"


def test_bad_tokens_are_refused_and_never_logged(
        migrated_url: str, issuer: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    (kid,) = issuer.keys
    now = int(time.time())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = issuer.keys[kid].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 300,
              "groups": ["ops"]}
    bad = {
        "alg none": jwt.encode(claims, None, algorithm="none", headers={"kid": kid}),
        # The public key used as an HMAC secret: the classic algorithm confusion.
        "HS256 with the public key": _hs256(claims, public_pem, kid),
        "wrong audience": issuer.token(kid, aud="another-api"),
        "wrong issuer": issuer.token(kid, iss="https://evil.example"),
        "expired": issuer.token(kid, iat=now - 3600, exp=now - 600),
        "not yet valid": issuer.token(kid, nbf=now + 600),
        "no expiry": issuer.token(kid, exp=None),
        "no subject": issuer.token(kid, sub=None),
        "signed by a stranger": issuer.token(kid, key=stranger),
        "unknown kid": issuer.token("nope", key=stranger),
        "tampered": issuer.token(kid)[:-4] + "AAAA",
        "garbage": "a.b.c",
    }
    with serve_http(_api(migrated_url, issuer)) as url:
        assert _me(url, issuer.token(kid)).status_code == 200
        for what, token in bad.items():
            response = _me(url, token)
            assert response.status_code == 401, what
            assert response.headers["www-authenticate"].startswith("Bearer"), what
    assert "OIDC token refused" in caplog.text  # the reason is logged...
    for token in bad.values():
        assert token not in caplog.text  # ...never the token
        signature = token.split(".")[-1]
        assert len(signature) < 8 or signature not in caplog.text


def test_key_rotation_is_picked_up_and_unknown_kids_do_not_hammer_the_issuer(
        migrated_url: str, issuer: Issuer) -> None:
    (old,) = issuer.keys
    with serve_http(_api(migrated_url, issuer, oidc_jwks_refresh_min_s=1.0)) as url:
        assert _me(url, issuer.token(old)).status_code == 200
        fetched = issuer.jwks_fetches
        new = issuer.add_key()
        del issuer.keys[old]
        # The cached set lacks the new key: the API fetches again once its
        # refresh interval since the last fetch has passed.
        wait_until(lambda: _me(url, issuer.token(new)).status_code == 200, 10,
                   "the rotated key to be fetched")
        assert issuer.jwks_fetches > fetched
    with serve_http(_api(migrated_url, issuer, oidc_jwks_refresh_min_s=30.0)) as url:
        assert _me(url, issuer.token(new)).status_code == 200
        before = issuer.jwks_fetches
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for n in range(20):
            assert _me(url, issuer.token(f"made-up-{n}", key=stranger)).status_code == 401
        assert issuer.jwks_fetches == before  # made-up key ids cause no fetch in the interval


def test_oidc_needs_an_audience() -> None:
    with pytest.raises(ValueError, match="NX_OIDC_AUDIENCE"):
        Settings(environment="test", oidc_issuer="https://login.example")
