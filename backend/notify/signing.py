"""Webhook signatures: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-NaloxNet-Signature"
DELIVERY_HEADER = "X-NaloxNet-Delivery"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance_s: float = 300) -> bool:
    """Say whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))
