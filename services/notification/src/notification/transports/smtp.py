"""Email channels: an HTML + text email over SMTP (STARTTLS, implicit TLS and AUTH per settings).

Recipients: the channel's ``to``, and with ``to_owner`` the owner of a ``loop_closed`` delivery's customer
(:func:`notification.domain.loop.recipients`); none at all fails the attempt for good (routing records such a
delivery as ``skipped`` before it gets here, unless the channel changed since).

Its ``Message-ID`` is the delivery id, so a mail client shows a re-sent attempt once. An SMTP 4xx (or a connection
that fails) is worth trying again; a 5xx is not; when every recipient is refused, the highest code decides.
"""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from notification.config import NotificationSettings
from notification.domain.loop import recipients
from notification.domain.messages import email_parts, summarize
from notification.transports.base import ERROR_CHARS, Message, SendOutcome

__all__ = ["EmailSender"]


class EmailSender:
    def __init__(self, settings: NotificationSettings) -> None:
        self._settings = settings

    async def send(self, message: Message) -> SendOutcome:
        settings = self._settings
        to = recipients(message.channel, message.payload.get("data") or {})
        if not to:
            return SendOutcome(None, "no recipient: the channel names none, and the delivery has no customer owner "
                                     "with an email address")
        subject, text, html = email_parts(summarize(message.payload, settings.dashboard_url))
        email = EmailMessage()
        email["Subject"] = subject
        email["From"] = settings.smtp_from
        email["To"] = ", ".join(to)
        email["Message-ID"] = f"<{message.delivery_id}@feedbackloop>"
        email.set_content(text)
        email.add_alternative(html, subtype="html")
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(email, hostname=settings.smtp_host, port=settings.smtp_port,
                                  username=settings.smtp_username if password else None, password=password,
                                  use_tls=settings.smtp_tls, start_tls=settings.smtp_starttls,
                                  timeout=settings.smtp_timeout)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            refused = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)[:ERROR_CHARS]
            return SendOutcome(max(codes, default=None), f"SMTP refused every recipient: {refused}",
                               retryable=any(400 <= c < 500 for c in codes))
        except aiosmtplib.SMTPResponseException as exc:
            return SendOutcome(exc.code, f"SMTP {exc.code}: {exc.message}"[:ERROR_CHARS],
                               retryable=400 <= exc.code < 500)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return SendOutcome(None, f"{type(exc).__name__}: {exc}", retryable=True)
        return SendOutcome(250, detail=f"to {', '.join(to)}"[:ERROR_CHARS])
