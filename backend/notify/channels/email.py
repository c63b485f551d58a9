"""E-mail over SMTP (STARTTLS, TLS or plain on a trusted network), text with an HTML part."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal

from pydantic import BaseModel, SecretStr

from backend.notify.channels import DeliveryError, Destination, Message
from backend.notify.signing import DELIVERY_HEADER
from backend.notify.text import html_text, plain_text, subject_line


class SmtpSettings(BaseModel):
    """Where and how mail is sent (NX_NOTIFY_SMTP_*)."""

    host: str
    port: int
    security: Literal["starttls", "tls", "none"]
    username: str | None
    password: SecretStr | None
    sender: str
    ca_file: str | None = None


def build_email(sender: str, destination: Destination, message: Message) -> EmailMessage:
    """Return the e-mail for ``message``: plain text and an HTML alternative."""
    mail = EmailMessage()
    mail["Subject"] = subject_line(message.payload)
    mail["From"] = sender
    mail["To"] = ", ".join(a.strip() for a in destination.target.split(","))
    # The same id on every retry lets a mail rule drop repeats.
    mail[DELIVERY_HEADER] = message.delivery_id
    mail["Message-ID"] = make_msgid(idstring=message.delivery_id, domain="naloxnet.invalid")
    mail.set_content(plain_text(message.payload))
    mail.add_alternative(html_text(message.payload), subtype="html")
    report = message.payload.get("report")
    page = message.payload.get("html")
    if isinstance(report, dict) and isinstance(page, str):
        # Many mail clients drop inline SVG and styles: the page is attached as well,
        # to be opened in a browser, printed or forwarded whole.
        mail.add_attachment(page, subtype="html", charset="utf-8",
                            filename=str(report.get("filename") or "report.html"))
    return mail


class EmailSender:
    """Send each message in its own SMTP session (mail volume is alerts, not events)."""

    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.smtp.ca_file)

    def __call__(self, destination: Destination, message: Message) -> None:
        """Send ``message`` to the route's addresses; raise DeliveryError if the server refuses."""
        mail = build_email(self.smtp.sender, destination, message)
        smtp = self.smtp
        try:
            client: smtplib.SMTP
            if smtp.security == "tls":
                client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=destination.timeout_s,
                                          context=self._context())
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=destination.timeout_s)
            with client:
                if smtp.security == "starttls":
                    client.starttls(context=self._context())
                if smtp.username:
                    password = smtp.password.get_secret_value() if smtp.password else ""
                    client.login(smtp.username, password)
                refused = client.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(type(exc).__name__) from None
        if refused:
            raise DeliveryError(f"SMTP refused {len(refused)} recipient(s)")
