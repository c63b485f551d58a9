"""Chat, SMS and push through Apprise: one URL per route (tgram://, msteams://, ntfy://, ...)."""

from __future__ import annotations

import apprise

from backend.notify.channels import DeliveryError, Destination, Message
from backend.notify.text import plain_text, subject_line

SEVERITY_TYPES = {
    "critical": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
}


def is_apprise_url(url: str) -> bool:
    """Say whether Apprise knows how to send to ``url``."""
    return bool(apprise.Apprise().add(url))


class AppriseSender:
    """Send through the Apprise library (no per-service client of our own)."""

    def __call__(self, destination: Destination, message: Message) -> None:
        """Send ``message``; raise DeliveryError unless Apprise reports success."""
        client = apprise.Apprise()
        if not client.add(destination.target):
            raise DeliveryError("Apprise does not accept this URL")
        alert = message.payload.get("alert")
        severity = alert.get("severity") if isinstance(alert, dict) else None
        result = client.notify(
            body=plain_text(message.payload), title=subject_line(message.payload),
            notify_type=SEVERITY_TYPES.get(str(severity), apprise.NotifyType.INFO),
            body_format=apprise.NotifyFormat.TEXT, timeout=destination.timeout_s,
        )
        if not result:
            raise DeliveryError(f"Apprise: {result.status.name.lower()}")
