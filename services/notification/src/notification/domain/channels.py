"""Where a rule's matches go: webhook, Slack, email, a reply on a support conversation, or a tracker issue.
Parsing, checking and masking. Pure.

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

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from notification.domain.errors import RuleInvalid
from notification.domain.loop import template_problem
from notification.domain.targets import TargetPolicy, check_webhook_url

__all__ = [
    "ALL_CONFIGURED",
    "CHANNEL_TYPES",
    "MASK",
    "MAX_RECIPIENTS",
    "TRACKERS",
    "Channel",
    "EmailChannel",
    "Integrations",
    "ReplyChannel",
    "SlackChannel",
    "TrackerChannel",
    "WebhookChannel",
    "channel_from_json",
    "mask_shown_url",
    "mask_url",
    "parse_channels",
]

CHANNEL_TYPES: tuple[str, ...] = ("webhook", "slack", "email", "zendesk", "intercom", "tracker")
#: What a secret looks like in every answer; on update, a channel given this secret keeps the stored one.
MASK = "***"
MAX_RECIPIENTS = 20
_KEYS = {"webhook": {"type", "url", "secret"}, "slack": {"type", "url"}, "email": {"type", "to", "to_owner"},
         "zendesk": {"type", "public", "message"}, "intercom": {"type", "public", "message"}}
#: Each tracker's keys: the one naming where issues go (required), and the optional ones.
TRACKERS: dict[str, tuple[str, frozenset[str]]] = {
    "github": ("repository", frozenset({"labels"})),
    "jira": ("project", frozenset({"labels", "issue_type"})),
    "linear": ("team", frozenset({"labels"})),
}
_TARGET_FORMS = {"github": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$"),
                            "owner/repository, e.g. acme/web"),
                 "jira": (re.compile(r"^[A-Z][A-Z0-9_]{0,49}$"), "a project key, e.g. AUTH"),
                 "linear": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$"), "a team key, e.g. ENG")}
_MAX_LABELS = 20


@dataclass(frozen=True)
class Integrations:
    """What the operator configured for the channels that call a vendor with the service's own credentials:
    ``missing`` maps ``zendesk``, ``intercom``, ``github``, ``jira``, ``linear`` to the environment variables
    still unset (absent or empty: ready)."""

    missing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def unset(self, name: str) -> tuple[str, ...]:
        return tuple(self.missing.get(name) or ())


#: Every vendor ready: what a caller that does not check (a unit test, a preview) passes.
ALL_CONFIGURED = Integrations()


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


def parse_channels(raw: Any, policy: TargetPolicy, previous: Sequence[Channel] = (),
                   integrations: Integrations = ALL_CONFIGURED) -> list[Channel]:
    """Check the ``channels`` list and return the channels, or raise :class:`RuleInvalid` naming each problem.

    A support-tool or tracker channel whose vendor is not configured (``integrations``) is refused, naming the
    environment variables to set.

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
        if kind == "tracker":
            tracker = _tracker(entry, here, integrations, errors)
            if tracker is not None:
                channels.append(tracker)
            continue
        extra = set(entry) - _KEYS[kind]
        if extra:
            errors.append({"field": here, "message": f"unknown key(s) {sorted(extra)}; a {kind} channel has "
                                                     f"{', '.join(sorted(_KEYS[kind]))}"})
        if kind == "email":
            email = _email(entry, here, errors)
            if email is not None:
                channels.append(email)
            continue
        if kind in ("zendesk", "intercom"):
            reply = _reply(kind, entry, here, integrations, errors)
            if reply is not None:
                channels.append(reply)
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


def _email(entry: Mapping[str, Any], here: str, errors: list[dict[str, str]]) -> EmailChannel | None:
    """An email channel: ``to`` (1 to 20 addresses; may be empty or left out with ``to_owner``) and ``to_owner``."""
    to_owner = entry.get("to_owner", False)
    if not isinstance(to_owner, bool):
        errors.append({"field": f"{here}.to_owner", "message": "true or false: a loop's customer owner is a "
                                                                "recipient too"})
        return None
    before = len(errors)
    raw = entry.get("to")
    to = () if to_owner and raw in (None, []) else _recipients(raw, f"{here}.to", errors, to_owner=to_owner)
    return EmailChannel(to=to, to_owner=to_owner) if len(errors) == before else None


def _reply(kind: str, entry: Mapping[str, Any], here: str, integrations: Integrations,
           errors: list[dict[str, str]]) -> ReplyChannel | None:
    before = len(errors)
    public = entry.get("public", False)
    if not isinstance(public, bool):
        errors.append({"field": f"{here}.public", "message": "true (a public reply the customer reads) or false "
                                                              "(an internal note)"})
    message = entry.get("message")
    if message is not None:
        problem = template_problem(message)
        if problem:
            errors.append({"field": f"{here}.message", "message": problem})
    unset = integrations.unset(kind)
    if unset:
        errors.append({"field": f"{here}.type", "message": f"{kind} is not configured: set {', '.join(unset)}"})
    if len(errors) != before:
        return None
    return ReplyChannel(type=kind, public=bool(public), message=message or None)


def _tracker(entry: Mapping[str, Any], here: str, integrations: Integrations,
             errors: list[dict[str, str]]) -> TrackerChannel | None:
    tracker = entry.get("tracker")
    if tracker not in TRACKERS:
        errors.append({"field": f"{here}.tracker", "message": f"unsupported tracker {tracker!r}; one of "
                                                              f"{', '.join(TRACKERS)}"})
        return None
    before = len(errors)
    key, optional = TRACKERS[tracker]
    allowed = {"type", "tracker", key, *optional}
    extra = set(entry) - allowed
    if extra:
        errors.append({"field": here, "message": f"unknown key(s) {sorted(extra)}; a {tracker} tracker channel "
                                                 f"has {', '.join(sorted(allowed))}"})
    target = entry.get(key)
    pattern, form = _TARGET_FORMS[tracker]
    if not isinstance(target, str) or not pattern.match(target):
        errors.append({"field": f"{here}.{key}", "message": f"Field required: {form}"})
    labels = entry.get("labels", [])
    if not isinstance(labels, list) or len(labels) > _MAX_LABELS or not all(
            isinstance(x, str) and 0 < len(x) <= 100 and not any(c.isspace() for c in x) for x in labels):
        errors.append({"field": f"{here}.labels", "message": f"a list of at most {_MAX_LABELS} labels, each 1 to "
                                                             "100 characters without spaces"})
    issue_type = entry.get("issue_type")
    if issue_type is not None and (not isinstance(issue_type, str) or not 0 < len(issue_type.strip()) <= 100):
        errors.append({"field": f"{here}.issue_type", "message": "a Jira issue type name, e.g. Bug or Task"})
    unset = integrations.unset(tracker)
    if unset:
        errors.append({"field": f"{here}.tracker", "message": f"{tracker} is not configured: set "
                                                              f"{', '.join(unset)}"})
    if len(errors) != before:
        return None
    return TrackerChannel(tracker=tracker, target=str(target), labels=tuple(labels),
                          issue_type=issue_type.strip() if isinstance(issue_type, str) else None)


def _recipients(raw: Any, loc: str, errors: list[dict[str, str]], *, to_owner: bool = False) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        errors.append({"field": loc, "message": "Field required: a list of 1 to 20 email addresses"
                                                + ("" if to_owner else ' (or [] with "to_owner": true)')})
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
