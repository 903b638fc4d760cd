"""Where a rule's matches go: webhook, Slack incoming webhook, or email. Parsing, checking and masking. Pure.

    {"type": "webhook", "url": "https://…", "secret": "whsec_…"}   signed per Standard Webhooks
    {"type": "slack",   "url": "https://hooks.slack.com/services/…"} a Block Kit message; the URL is the secret
    {"type": "email",   "to": ["team@example.com", …]}               HTML + text, over the configured SMTP server

Secrets never leave the service: a webhook's ``secret`` is shown as ``***``, and a Slack URL (which *is* the
credential: whoever holds it may post) as ``<scheme>://<host>/***``. On update, a channel given back masked keeps
what is stored: a webhook by its URL, a Slack channel by its masked URL.

Webhook URLs often carry a credential too (Discord, Teams, Zapier and many others put a token in the path or the
query), so to a key without the ``write`` scope every channel URL is shown masked (:meth:`masked` with
``reveal_urls=False``, :func:`mask_shown_url`): host kept, path and query hidden.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from notification.domain.errors import RuleInvalid
from notification.domain.targets import TargetPolicy, check_webhook_url

__all__ = [
    "CHANNEL_TYPES",
    "MASK",
    "MAX_RECIPIENTS",
    "Channel",
    "EmailChannel",
    "SlackChannel",
    "WebhookChannel",
    "channel_from_json",
    "mask_shown_url",
    "mask_url",
    "parse_channels",
]

CHANNEL_TYPES: tuple[str, ...] = ("webhook", "slack", "email")
#: What a secret looks like in every answer; on update, a channel given this secret keeps the stored one.
MASK = "***"
MAX_RECIPIENTS = 20
_KEYS = {"webhook": {"type", "url", "secret"}, "slack": {"type", "url"}, "email": {"type", "to"}}


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/x?y`` → ``https://hooks.slack.com/***``: scheme, host and port kept;
    path, query, fragment (and any ``user:password@``) hidden, for they may be the credential."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/{MASK}"


def mask_shown_url(shown: str) -> str:
    """A delivery's URL (:meth:`shown_url`) as a key without ``write`` scope sees it: masked, or ``mailto:…``
    as it is (an email channel's recipients are no credential)."""
    return shown if shown.startswith("mailto:") else mask_url(shown)


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
    """Recipients of an email; the SMTP server and its credentials are the service's settings, not the rule's."""

    to: tuple[str, ...]
    type: str = "email"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "to": list(self.to)}

    def masked(self, *, reveal_urls: bool = False) -> dict[str, Any]:
        return self.to_json()

    def shown_url(self) -> str:
        return "mailto:" + ",".join(self.to)


Channel = WebhookChannel | SlackChannel | EmailChannel


def channel_from_json(raw: Mapping[str, Any]) -> Channel:
    """A stored channel (as :meth:`to_json` wrote it) back as its dataclass; one without a type is a webhook."""
    kind = raw.get("type", "webhook")
    if kind == "slack":
        return SlackChannel(url=raw["url"])
    if kind == "email":
        return EmailChannel(to=tuple(raw["to"]))
    return WebhookChannel(url=raw["url"], secret=raw["secret"])


def parse_channels(raw: Any, policy: TargetPolicy, previous: Sequence[Channel] = ()) -> list[Channel]:
    """Check the ``channels`` list and return the channels, or raise :class:`RuleInvalid` naming each problem.

    A webhook whose ``secret`` is omitted or :data:`MASK` keeps the secret of the ``previous`` webhook with the same
    URL (so a client may PUT back what it read); without such a channel the secret is required. Likewise a Slack
    channel given its masked URL keeps the ``previous`` Slack URL that masks the same way.
    """
    loc = "channels"
    if not isinstance(raw, list) or not raw:
        raise RuleInvalid([{"field": loc, "message": "give at least one channel"}])
    errors: list[dict[str, str]] = []
    channels: list[Channel] = []
    kept_secrets = {c.url: c.secret for c in previous if isinstance(c, WebhookChannel)}
    kept_slack = {mask_url(c.url): c.url for c in previous if isinstance(c, SlackChannel)}
    for i, entry in enumerate(raw):
        here = f"{loc}.{i}"
        if not isinstance(entry, Mapping):
            errors.append({"field": here, "message": "expected an object"})
            continue
        kind = entry.get("type")
        if kind not in CHANNEL_TYPES:
            errors.append({"field": f"{here}.type",
                           "message": f"unsupported channel type {kind!r}; supported channel types: "
                                      f"{', '.join(CHANNEL_TYPES)}"})
            continue
        extra = set(entry) - _KEYS[kind]
        if extra:
            errors.append({"field": here, "message": f"unknown key(s) {sorted(extra)}; a {kind} channel has "
                                                     f"{', '.join(sorted(_KEYS[kind]))}"})
        if kind == "email":
            to = _recipients(entry.get("to"), f"{here}.to", errors)
            if to:
                channels.append(EmailChannel(to=to))
            continue
        url = entry.get("url")
        if kind == "slack" and isinstance(url, str) and url in kept_slack:
            url = kept_slack[url]
        if not isinstance(url, str) or not url:
            errors.append({"field": f"{here}.url", "message": "Field required: the URL to POST to"})
            continue
        url_problem = check_webhook_url(url, policy)
        if url_problem:
            errors.append({"field": f"{here}.url", "message": url_problem})
            continue
        if kind == "slack":
            channels.append(SlackChannel(url=url))
            continue
        secret = entry.get("secret")
        if (secret is None or secret == MASK) and url in kept_secrets:
            secret = kept_secrets[url]
        secret_problem = _secret_problem(secret)
        if secret_problem:
            errors.append({"field": f"{here}.secret", "message": secret_problem})
        elif isinstance(secret, str):
            channels.append(WebhookChannel(url=url, secret=secret))
    if errors:
        raise RuleInvalid(errors)
    return channels


def _recipients(raw: Any, loc: str, errors: list[dict[str, str]]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        errors.append({"field": loc, "message": "Field required: a list of 1 to 20 email addresses"})
        return ()
    if len(raw) > MAX_RECIPIENTS:
        errors.append({"field": loc, "message": f"at most {MAX_RECIPIENTS} recipients"})
        return ()
    for j, address in enumerate(raw):
        if not isinstance(address, str) or not _looks_like_address(address):
            errors.append({"field": f"{loc}.{j}", "message": f"{address!r} is not an email address"})
            return ()
    return tuple(raw)


def _looks_like_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return (bool(at) and bool(local) and "." in domain and len(address) <= 254
            and not any(c.isspace() or c in "<>,;\"" for c in address))


def _secret_problem(secret: Any) -> str | None:
    if secret is None or secret == MASK:
        return "Field required: the signing secret (whsec_<base64>, or any string: its UTF-8 bytes are the key)"
    if not isinstance(secret, str):
        return "the secret is a string"
    if secret.startswith("whsec_"):
        encoded = secret[len("whsec_"):]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            return "a whsec_ secret is whsec_ followed by base64"
        if not key:
            return "the key of a whsec_ secret must not be empty"
        return None
    if not secret.strip() or len(secret) > 512:
        return "the secret must be 1 to 512 characters (or whsec_<base64>)"
    return None
