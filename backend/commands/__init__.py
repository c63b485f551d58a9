"""Commands to machines: stored, published, resent until answered or expired (docs/backend.md)."""
