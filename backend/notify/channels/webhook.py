"""Webhooks: a signed HTTP POST of the notification's JSON."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from backend.notify.channels import DeliveryError, Destination, Message
from backend.notify.signing import DELIVERY_HEADER, SIGNATURE_HEADER, signature


def render_body(message: Message) -> bytes:
    """Return the exact bytes posted (and signed): compact JSON with sorted keys."""
    body: dict[str, Any] = {**message.payload, "delivery_id": message.delivery_id}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class WebhookSender:
    """Post to a route's URL with one shared connection pool."""

    def __init__(self) -> None:
        self._client = httpx.Client(follow_redirects=False,
                                    headers={"User-Agent": "NaloxNet-Notify/1"})

    def __call__(self, destination: Destination, message: Message) -> None:
        """Post ``message``; raise DeliveryError unless the receiver answers 2xx."""
        body = render_body(message)
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: message.delivery_id,
            "X-NaloxNet-Event": message.event,
        }
        if destination.secret:
            headers[SIGNATURE_HEADER] = signature(destination.secret, int(time.time()), body)
        try:
            response = self._client.post(destination.target, content=body, headers=headers,
                                         timeout=destination.timeout_s)
        except httpx.HTTPError as exc:
            # The class only: the text may quote the URL, and URLs can carry tokens.
            raise DeliveryError(type(exc).__name__) from None
        if not response.is_success:
            raise DeliveryError(f"HTTP {response.status_code}")

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
