"""The channels a delivery goes out on, each a :class:`~notification.transports.base.Sender`.

* :mod:`~notification.transports.webhook` — a ``POST`` signed per Standard Webhooks;
* :mod:`~notification.transports.slack`   — a Block Kit message to a Slack incoming webhook;
* :mod:`~notification.transports.smtp`    — an HTML + text email over SMTP;
* :mod:`~notification.transports.egress`  — the HTTP client webhook and Slack share: every target re-checked
  after DNS resolution, redirects never followed (SSRF).
"""

from __future__ import annotations

import httpx

from notification.config import NotificationSettings
from notification.transports._http import host_of
from notification.transports.base import Message, Sender, SendOutcome
from notification.transports.slack import SlackSender
from notification.transports.smtp import EmailSender
from notification.transports.webhook import WebhookSender

__all__ = ["Message", "SendOutcome", "Sender", "host_of", "senders"]


def senders(settings: NotificationSettings, client: httpx.AsyncClient) -> dict[str, Sender]:
    """The sender of each channel type; webhook and Slack share ``client`` (:func:`.egress.guarded_client`)."""
    return {
        "webhook": WebhookSender(client, timeout=settings.delivery_timeout),
        "slack": SlackSender(client, timeout=settings.delivery_timeout, dashboard_url=settings.dashboard_url),
        "email": EmailSender(settings),
    }
