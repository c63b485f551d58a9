"""Authentication and authorization: roles, principals, API tokens, OIDC access tokens."""

from backend.auth.principal import Principal, Role

__all__ = ["Principal", "Role"]
