"""Where a rule's matches go: webhook, Slack, email, a reply on a support conversation, or a tracker issue.
The channel types, their stored form and masking. Pure.
(Checking a rule's channels: :mod:`notification.domain.channel_rules`.)

    {"type": "webhook", "url": "https://…", "secret": "whsec_…"}   signed per Standard Webhooks
    {"type": "slack",   "url": "https://hooks.slack.com/services/…"} a Block Kit message; the URL is the secret
    {"type": "email",   "to": ["team@example.com", …], "to_owner": true}
                                                                  HTML + text, over the configured SMTP server;
                                                                  ``to_owner``: a loop's customer owner too
    {"type": "zendesk", "public": false, "message": "…{issue_title}…"}  a reply (public) or internal note on the
    {"type": "intercom", "public": true}                                customer's newest conversation of a
                                                                        ``loop_closed`` insight
    {"type": "tracker", "tracker": "github", "repository": "acme/web", "labels": ["feedback"]}
    {"type": "tracker", "tracker": "jira", "project": "AUTH", "issue_type": "Bug"}
    {"type": "tracker", "tracker": "linear", "team": "ENG"}      one issue per insight episode

Support tools and trackers are called with the operator's credentials (``NOTIFICATION_ZENDESK_*``,
``NOTIFICATION_INTERCOM_*``, ``TRACKER_*``), never the rule's: a rule naming one that is not configured is refused
when saved, naming the variables to set (:class:`Integrations`).

Secrets never leave the service: a webhook's ``secret`` is shown as ``***``, and a Slack URL (which *is* the
credential: whoever holds it may post) as ``<scheme>://<host>/***``. On update, a channel given back masked keeps
what is stored: a webhook by its URL, a Slack channel by its masked URL.

Webhook URLs often carry a credential too (Discord, Teams, Zapier and many others put a token in the path or the
query), so to a key without the ``write`` scope every channel URL is shown masked (:meth:`masked` with
``reveal_urls=False``, :func:`mask_shown_url`): host kept, path and query hidden. The other channels show a name
(``mailto:…``, ``zendesk:internal-note``, ``jira:AUTH``) that holds no credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "CHANNEL_TYPES",
    "MASK",
    "TRACKERS",
    "Channel",
    "EmailChannel",
    "ReplyChannel",
    "SlackChannel",
    "TrackerChannel",
    "WebhookChannel",
    "channel_from_json",
    "mask_shown_url",
    "mask_url",
]

CHANNEL_TYPES: tuple[str, ...] = ("webhook", "slack", "email", "zendesk", "intercom", "tracker")
#: What a secret looks like in every answer; on update, a channel given this secret keeps the stored one.
MASK = "***"
#: Each tracker's keys: the one naming where issues go (required), and the optional ones.
TRACKERS: dict[str, tuple[str, frozenset[str]]] = {
    "github": ("repository", frozenset({"labels"})),
    "jira": ("project", frozenset({"labels", "issue_type"})),
    "linear": ("team", frozenset({"labels"})),
}

def mask_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/x?y`` → ``https://hooks.slack.com/***``: scheme, host and port kept;
    path, query, fragment (and any ``user:password@``) hidden, for they may be the credential."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/{MASK}"


def mask_shown_url(shown: str) -> str:
    """A delivery's URL (:meth:`shown_url`) as a key without ``write`` scope sees it: masked, or as it is when it
    is no URL (``mailto:…``, ``zendesk:internal-note``, ``jira:AUTH``: names, no credential)."""
    return mask_url(shown) if "://" in shown else shown


@dataclass(frozen=True)
class WebhookChannel:
    """A webhook target. ``secret`` starting ``whsec_`` is base64 (Standard Webhooks); otherwise its UTF-8 bytes."""

    url: str
    secret: str
    type: str = "webhook"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "url": self.url, "secret": self.secret}

    def masked(self, *, reveal_urls: bool = False) -> dict[str, Any]:
        return {"type": self.type, "url": self.url if reveal_urls else mask_url(self.url), "secret": MASK}

    def shown_url(self) -> str:
        return self.url


@dataclass(frozen=True)
class SlackChannel:
    """A Slack incoming webhook; its URL is the credential, so it is shown masked."""

    url: str
    type: str = "slack"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "url": self.url}

    def masked(self, *, reveal_urls: bool = False) -> dict[str, Any]:
        return {"type": self.type, "url": mask_url(self.url)}

    def shown_url(self) -> str:
        return mask_url(self.url)


@dataclass(frozen=True)
class EmailChannel:
    """Recipients of an email; the SMTP server and its credentials are the service's settings, not the rule's.
    ``to_owner``: a ``loop_closed`` delivery also goes to its customer's owner (when that is an email address)."""

    to: tuple[str, ...]
    to_owner: bool = False
    type: str = "email"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "to": list(self.to), **({"to_owner": True} if self.to_owner else {})}

    def masked(self, *, reveal_urls: bool = False) -> dict[str, Any]:
        return self.to_json()

    def shown_url(self) -> str:
        return "mailto:" + ",".join((*self.to, *(("<owner>",) if self.to_owner else ())))


@dataclass(frozen=True)
class ReplyChannel:
    """A reply on a loop customer's newest conversation in a support tool (``zendesk`` or ``intercom``): public
    (the customer reads it) or an internal note (``public`` false, the default); ``message`` a template."""

    type: str
    public: bool = False
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "public": self.public, **({"message": self.message} if self.message else {})}

    def masked(self, *, reveal_urls: bool = False) -> dict[str, Any]:
        return self.to_json()

    def shown_url(self) -> str:
        return f"{self.type}:{'public-reply' if self.public else 'internal-note'}"


@dataclass(frozen=True)
class TrackerChannel:
    """An issue in a tracker for an insight: ``target`` is the GitHub repository, Jira project or Linear team."""

    tracker: str
    target: str
    labels: tuple[str, ...] = ()
    issue_type: str | None = None  # Jira only
    type: str = "tracker"

    def to_json(self) -> dict[str, Any]:
        key = TRACKERS[self.tracker][0]
        return {"type": self.type, "tracker": self.tracker, key: self.target,
                **({"labels": list(self.labels)} if self.labels else {}),
                **({"issue_type": self.issue_type} if self.issue_type else {})}

    def masked(self, *, reveal_urls: bool = False) -> dict[str, Any]:
        return self.to_json()

    def shown_url(self) -> str:
        return f"{self.tracker}:{self.target}"


Channel = WebhookChannel | SlackChannel | EmailChannel | ReplyChannel | TrackerChannel


def channel_from_json(raw: Mapping[str, Any]) -> Channel:
    """A stored channel (as :meth:`to_json` wrote it) back as its dataclass; one without a type is a webhook."""
    kind = raw.get("type", "webhook")
    if kind == "slack":
        return SlackChannel(url=raw["url"])
    if kind == "email":
        return EmailChannel(to=tuple(raw.get("to") or ()), to_owner=bool(raw.get("to_owner")))
    if kind in ("zendesk", "intercom"):
        return ReplyChannel(type=kind, public=bool(raw.get("public")), message=raw.get("message") or None)
    if kind == "tracker":
        tracker = str(raw["tracker"])
        return TrackerChannel(tracker=tracker, target=str(raw[TRACKERS[tracker][0]]),
                              labels=tuple(raw.get("labels") or ()), issue_type=raw.get("issue_type") or None)
    return WebhookChannel(url=raw["url"], secret=raw["secret"])
