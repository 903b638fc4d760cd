"""The channels a delivery goes out on, each a :class:`~notification.transports.base.Sender`.

* :mod:`~notification.transports.webhook` — a ``POST`` signed per Standard Webhooks;
* :mod:`~notification.transports.slack`   — a Block Kit message to a Slack incoming webhook;
* :mod:`~notification.transports.smtp`    — an HTML + text email over SMTP;
* :mod:`~notification.transports.zendesk` / :mod:`~notification.transports.intercom` — a reply or internal note
  on a loop customer's conversation, never two (the delivery's marker is looked for first);
* :mod:`~notification.transports.tracker` — a GitHub, Jira or Linear issue for an insight;
* :mod:`~notification.transports.egress`  — the HTTP client webhook and Slack share: every target re-checked
  after DNS resolution, redirects never followed (SSRF). Support tools and trackers are called at URLs of the
  operator's environment, not of rules, over a plain client of their own (``vendor_client``).
"""

from __future__ import annotations

import httpx

from notification.config import NotificationSettings
from notification.transports._http import host_of
from notification.transports.base import Message, Sender, SendOutcome
from notification.transports.intercom import IntercomSender
from notification.transports.slack import SlackSender
from notification.transports.smtp import EmailSender
from notification.transports.tracker import TrackerSender
from notification.transports.webhook import WebhookSender
from notification.transports.zendesk import ZendeskSender

__all__ = ["Message", "SendOutcome", "Sender", "host_of", "senders"]


def senders(settings: NotificationSettings, client: httpx.AsyncClient,
            vendor_client: httpx.AsyncClient | None = None) -> dict[str, Sender]:
    """The sender of each channel type; webhook and Slack share ``client`` (:func:`.egress.guarded_client`: their
    URLs come from rules), Zendesk, Intercom and the trackers ``vendor_client`` (their URLs come from the
    operator's environment; ``client`` when none is given)."""
    vendor = vendor_client or client
    return {
        "webhook": WebhookSender(client, timeout=settings.delivery_timeout),
        "slack": SlackSender(client, timeout=settings.delivery_timeout, dashboard_url=settings.dashboard_url),
        "email": EmailSender(settings),
        "zendesk": ZendeskSender(vendor, settings),
        "intercom": IntercomSender(vendor, settings),
        "tracker": TrackerSender(vendor, settings.trackers, dashboard_url=settings.dashboard_url),
    }
