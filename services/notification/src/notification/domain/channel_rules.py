"""Checking the ``channels`` of a rule as a client sends them: each channel's keys, URL, secret, recipients,
message template, tracker and target, and whether the vendor it calls is configured. Pure.

The channel types themselves, their stored form and their masking are :mod:`notification.domain.channels`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notification.domain.channels import (
    CHANNEL_TYPES,
    MASK,
    TRACKERS,
    Channel,
    EmailChannel,
    ReplyChannel,
    SlackChannel,
    TrackerChannel,
    WebhookChannel,
    mask_url,
)
from notification.domain.errors import RuleInvalid
from notification.domain.loop import template_problem
from notification.domain.targets import TargetPolicy, check_webhook_url

__all__ = ["ALL_CONFIGURED", "MAX_RECIPIENTS", "Integrations", "parse_channels"]

MAX_RECIPIENTS = 20
_KEYS = {"webhook": {"type", "url", "secret"}, "slack": {"type", "url"}, "email": {"type", "to", "to_owner"},
         "zendesk": {"type", "public", "message"}, "intercom": {"type", "public", "message"}}
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
