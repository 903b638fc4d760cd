"""Closing the loop: a ``loop_closed`` insight told to each customer it answers. Pure: no I/O.

Aggregation raises one ``loop_closed`` insight per closed link, naming every customer who asked
(``loop.customers``: id, plan, MRR, owner, their items and support-tool conversations, newest first). Notification
routes it **once per customer** (:func:`fan_out`): the data a rule matches — and a delivery carries — is the insight
with ``loop.customers`` narrowed to that one customer, so a rule can test ``loop.customers.owner``,
``loop.customers.plan`` or ``loop.customers.mrr`` like any field. Each such delivery is keyed by
(insight id, customer id, rule, channel) (:func:`fanout_delivery_id`): a re-published insight (revision + 1) or a
redelivered event finds the rows it queued and tells no one twice.

What each channel makes of one customer's view (:func:`fit`):

* ``zendesk`` / ``intercom``: a reply (or internal note) on the customer's **newest** conversation of that tool
  (:func:`newest_conversation`); a customer with none → no delivery on that channel;
* ``email`` with ``to_owner``: the customer's owner joins the recipients when it is an email address; no owner and
  no other recipient → the delivery is recorded as ``skipped`` with the reason;
* ``tracker``: nothing (the loop already has its issue);
* anything else: sent as usual.

A reply's text is the channel's ``message`` template (placeholders :data:`PLACEHOLDERS`, checked when the rule is
saved: :func:`template_problem`) or a default, and always ends with the delivery's marker (:func:`marker`), which a
retry looks for before posting again.
"""

from __future__ import annotations

import hashlib
import html
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "FANOUT_NAMESPACE",
    "LOOP_TYPES",
    "MAX_TEMPLATE",
    "PLACEHOLDERS",
    "REPLY_SOURCES",
    "Fit",
    "FitKind",
    "View",
    "addresses_customer",
    "customer_of",
    "fan_out",
    "fanout_delivery_id",
    "fanout_key_for",
    "fit",
    "has_marker",
    "marker",
    "newest_conversation",
    "once_delivery_id",
    "owner_address",
    "recipients",
    "render_template",
    "reply_html",
    "reply_text",
    "template_problem",
    "template_values",
]

#: Namespace of the ids of fanned-out and once-per-insight deliveries (the ``webhook-id``, and the reply marker).
FANOUT_NAMESPACE = uuid.UUID("3e8a51c2-94d7-5b06-8f1e-2a7c6d0b9e35")
#: The insight types fanned out per customer. A ``loop_regression`` routes as a normal insight.
LOOP_TYPES = frozenset({"loop_closed"})
#: The support tools a reply channel posts to (``Conversation.source``).
REPLY_SOURCES = ("zendesk", "intercom")
#: What a reply channel's ``message`` may name.
PLACEHOLDERS = ("issue_title", "issue_url", "release", "customer")
MAX_TEMPLATE = 2000
_DEFAULT_PUBLIC = ("Good news: the problem you reported — {issue_title} — is fixed{release_clause}. "
                   "Thank you for telling us.")
_DEFAULT_NOTE = ("Feedback Loop: the issue this customer ({customer}) reported is fixed: {issue_title}"
                 "{release_clause}.{url_clause}")
_OWNER_CHANNELS = ("email",)


@dataclass(frozen=True)
class View:
    """One routing of an event: ``data`` as rules match it and deliveries carry it; ``fanout`` the customer id it
    was narrowed to (``None``: the event as it came)."""

    data: Mapping[str, Any]
    fanout: str | None = None


def fan_out(event_kind: str, data: Mapping[str, Any]) -> list[View]:
    """The views an event is routed as: one per customer of a ``loop_closed`` insight (duplicated customer ids
    once), else the event itself. A ``loop_closed`` insight naming no customer routes as a normal insight."""
    loop = data.get("loop")
    if event_kind != "insight" or data.get("type") not in LOOP_TYPES or not isinstance(loop, Mapping):
        return [View(data)]
    views: list[View] = []
    seen: set[str] = set()
    for customer in loop.get("customers") or []:
        if not isinstance(customer, Mapping) or not customer.get("id") or str(customer["id"]) in seen:
            continue
        seen.add(str(customer["id"]))
        views.append(View({**data, "loop": {**loop, "customers": [dict(customer)]}}, str(customer["id"])))
    return views or [View(data)]


def fanout_delivery_id(insight_id: str, customer_id: str, rule_id: str, channel_index: int) -> str:
    """The delivery of one customer of one insight on one channel of one rule: the same for every revision."""
    return str(uuid.uuid5(FANOUT_NAMESPACE, f"fanout\x1f{insight_id}\x1f{customer_id}\x1f{rule_id}\x1f{channel_index}"))


def fanout_key_for(customer_id: str, limit: int = 300) -> str:
    """The ``fanout_key`` a customer's deliveries are stored with (``customer:<id>``; a very long id shortened
    with its hash, so two customers never share one)."""
    key = f"customer:{customer_id}"
    if len(key) <= limit:
        return key
    return key[: limit - 41] + "#" + hashlib.sha256(customer_id.encode()).hexdigest()[:40]


def once_delivery_id(insight_id: str, rule_id: str, channel_index: int) -> str:
    """The delivery of a channel that acts once per insight (a tracker issue): revisions, even an escalation, find
    it again instead of filing a second issue."""
    return str(uuid.uuid5(FANOUT_NAMESPACE, f"once\x1f{insight_id}\x1f{rule_id}\x1f{channel_index}"))


def customer_of(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The one customer of a fanned-out view (``loop.customers`` narrowed to one), else ``None``."""
    loop = data.get("loop")
    customers = loop.get("customers") if isinstance(loop, Mapping) else None
    if data.get("type") in LOOP_TYPES and isinstance(customers, list) and len(customers) == 1 \
            and isinstance(customers[0], Mapping):
        return customers[0]
    return None


def newest_conversation(customer: Mapping[str, Any], source: str) -> str | None:
    """The id of the customer's newest conversation in ``source`` (``conversations`` come newest first)."""
    for conversation in customer.get("conversations") or []:
        if isinstance(conversation, Mapping) and conversation.get("source") == source and conversation.get("id"):
            return str(conversation["id"])
    return None


def owner_address(customer: Mapping[str, Any] | None) -> str | None:
    """The customer's owner when it is an email address (a handle such as ``@jane`` is not one)."""
    owner = customer.get("owner") if customer is not None else None
    if not isinstance(owner, str):
        return None
    local, at, domain = owner.strip().rpartition("@")
    if at and local and "." in domain and not any(c.isspace() or c in "<>,;\"" for c in owner.strip()):
        return owner.strip()
    return None


def recipients(channel: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
    """An email channel's recipients for one delivery: its ``to``, and with ``to_owner`` the owner of a
    fanned-out customer (once, whatever its case)."""
    found = [str(a) for a in channel.get("to") or []]
    owner = owner_address(customer_of(data)) if channel.get("to_owner") else None
    if owner is not None and owner.casefold() not in {a.casefold() for a in found}:
        found.append(owner)
    return found


class FitKind(StrEnum):
    SEND = "send"
    SKIP = "skip"  # recorded as ``skipped``, with the reason
    NONE = "none"  # no delivery at all on this channel


@dataclass(frozen=True)
class Fit:
    kind: FitKind
    reason: str | None = None


_SEND = Fit(FitKind.SEND)
_NONE = Fit(FitKind.NONE)


def fit(channel: Mapping[str, Any], event_kind: str, view: View) -> Fit:
    """What ``channel`` (as stored) does with one view of an event (see module)."""
    kind = channel.get("type", "webhook")
    customer = customer_of(view.data) if view.fanout is not None else None
    if kind in REPLY_SOURCES:
        if customer is None or newest_conversation(customer, str(kind)) is None:
            return _NONE
        return _SEND
    if kind == "tracker":
        return _SEND if event_kind == "insight" and view.fanout is None else _NONE
    if kind in _OWNER_CHANNELS and channel.get("to_owner") and not recipients(channel, view.data):
        who = f"customer {customer.get('id')}" if customer is not None else "this event"
        return Fit(FitKind.SKIP, f"not sent: {who} has no owner with an email address, and the channel names no "
                                 "other recipient")
    return _SEND


def addresses_customer(channel: Mapping[str, Any], view: View) -> bool:
    """Whether a delivery speaks to (or about) one customer and so cannot be rolled into a digest: a reply, a
    tracker issue, or an email to a customer's owner."""
    kind = channel.get("type", "webhook")
    return kind in (*REPLY_SOURCES, "tracker") or (view.fanout is not None and bool(channel.get("to_owner")))


# ---------------------------------------------------------------------------------------------- reply text


def template_problem(template: Any) -> str | None:
    """Why a reply ``message`` template cannot be used (``None``: it can): a string of at most
    :data:`MAX_TEMPLATE` characters whose ``{…}`` fields are among :data:`PLACEHOLDERS` (``{{``/``}}`` for braces)."""
    if not isinstance(template, str) or not template.strip():
        return "a non-empty string"
    if len(template) > MAX_TEMPLATE:
        return f"at most {MAX_TEMPLATE} characters"
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as exc:
        return f"cannot read the template: {exc} (write {{{{ and }}}} for literal braces)"
    known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS:
            return f"unknown placeholder {{{name}}}; use {known}"
        if spec or conversion:
            return f"placeholder {{{name}}} takes no format or conversion; use {known}"
    return None


def template_values(data: Mapping[str, Any]) -> dict[str, str]:
    """The placeholders' values for one view: the issue's title and page, the release's version (empty without
    a release) and the customer's id."""
    loop = _mapping(data.get("loop"))
    issue, release = _mapping(loop.get("issue")), _mapping(loop.get("release"))
    customer = customer_of(data) or {}
    return {"issue_title": str(issue.get("title") or issue.get("issue_key") or data.get("title") or "the issue"),
            "issue_url": str(issue.get("url") or ""), "release": str(release.get("version") or ""),
            "customer": str(customer.get("id") or "")}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def render_template(template: str, values: Mapping[str, str]) -> str:
    """``template`` with its placeholders filled (a checked template; anything unknown is left as written)."""
    try:
        return string.Formatter().vformat(template, (), _Values(values))
    except (ValueError, IndexError, KeyError):
        return template


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def reply_text(channel: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """What a reply says (without its marker): the channel's ``message``, or the default for a public reply or an
    internal note."""
    values = template_values(data)
    template = channel.get("message")
    if isinstance(template, str) and template.strip():
        return render_template(template, values)
    release, url = values["release"], values["issue_url"]
    default = _DEFAULT_PUBLIC if channel.get("public") else _DEFAULT_NOTE
    return default.format(**values, release_clause=f" in release {release}" if release else "",
                          url_clause=f" {url}" if url else "")


def marker(delivery_id: str) -> str:
    """The text every reply of a delivery carries, so a retry can tell it was already posted."""
    return f"feedbackloop:{delivery_id}"


def reply_html(text: str, delivery_id: str) -> str:
    """A reply's HTML body: the text as paragraphs, then a small reference line carrying the marker. The marker
    is visible text, not an HTML comment: support tools sanitize HTML and may drop comments."""
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n") if p.strip())
    return f"{paragraphs}<p><small>ref {marker(delivery_id)}</small></p>"


def has_marker(bodies: Sequence[Any], delivery_id: str) -> bool:
    """Whether any of ``bodies`` (a conversation's comments, as the tool returns them) carries the marker."""
    wanted = marker(delivery_id)
    return any(isinstance(b, str) and wanted in b for b in bodies)
