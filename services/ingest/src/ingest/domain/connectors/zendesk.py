"""Zendesk: event-webhook subscriptions (``zen:event-type:ticket.created`` / ``ticket.comment_added``) and the
trigger-webhook JSON template of the README. Signature: ``X-Zendesk-Webhook-Signature`` = base64
HMAC-SHA256 of ``X-Zendesk-Webhook-Signature-Timestamp`` + body; the timestamp must be inside the window.
Every item carries its ticket as ``conversation`` (``zendesk``, the ticket id): where a reply goes when its loop
closes."""

from __future__ import annotations

import re
from typing import Any

from feedbackloop.contracts.events import Channel
from ingest.domain.connectors.base import (
    ConnectorOptions,
    Delivery,
    Outcome,
    VerificationFailed,
    Verified,
    as_datetime,
    as_dict,
    b64,
    build,
    dig,
    hmac_digest,
    require_fresh,
    require_signature,
    text_of,
)
from ingest.domain.text import to_text

SIGNATURE = "x-zendesk-webhook-signature"
TIMESTAMP = "x-zendesk-webhook-signature-timestamp"
# Zendesk's {{ticket.description}} starts with a rule and "Name, Feb 3, 2025, 19:59": not the customer's words.
_RULE = re.compile(r"^-{5,}\s*$", re.M)
_BYLINE = re.compile(r"^[^\n,]{1,80}, [A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}\s*$", re.M)


class Zendesk:
    source: str = "zendesk"
    channel: Channel = "ticket"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        stamp = delivery.header(TIMESTAMP)
        sent_at = as_datetime(stamp)
        if sent_at is None:
            raise VerificationFailed("timestamp", f"The `{TIMESTAMP}` header is missing or not ISO-8601.")
        expected = b64(hmac_digest(secret, (stamp or "").encode() + delivery.body))
        require_signature(expected, delivery.header(SIGNATURE), SIGNATURE)
        require_fresh(sent_at, delivery.received_at, options.tolerance, TIMESTAMP)
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        kind = dig(payload, "type")
        if isinstance(kind, str) and kind.startswith("zen:event-type:"):
            return self._event(kind.removeprefix("zen:event-type:"), payload)
        if dig(payload, "ticket_id") is not None:
            return self._trigger(payload)
        return Outcome.ignore(f"unsupported Zendesk event type {kind!r}")

    def _event(self, kind: str, payload: Any) -> Outcome:
        ticket = as_dict(dig(payload, "detail"))
        common: dict[str, Any] = {
            "source": self.source,
            "channel": self.channel,
            "subject": text_of(ticket.get("subject")),
            "author_id": ticket.get("requester_id"),
            "customer_id": ticket.get("organization_id"),
            "tags": ticket.get("tags") if isinstance(ticket.get("tags"), list) else None,
            "conversation": ticket.get("id"),
        }
        if kind == "ticket.created":
            item = build(
                external_id=ticket.get("id"),
                text=to_text(text_of(ticket.get("description")), strip_quotes=True),
                created_at=as_datetime(ticket.get("created_at")) or as_datetime(payload.get("time")),
                **common,
            )
        elif kind == "ticket.comment_added":
            comment = as_dict(dig(payload, "event", "comment"))
            if comment.get("is_public") is False:
                return Outcome.ignore("a private comment is not customer feedback")
            if dig(comment, "author", "is_staff") is True:
                return Outcome.ignore("an agent's comment is not customer feedback")
            common["author_id"] = dig(comment, "author", "id") or common["author_id"]
            item = build(
                external_id=f"{ticket.get('id')}:comment:{comment.get('id')}" if comment.get("id") else None,
                text=to_text(text_of(comment.get("body")), strip_quotes=True),
                name=text_of(dig(comment, "author", "name")),
                created_at=as_datetime(payload.get("time")),
                **common,
            )
        else:
            return Outcome.ignore(f"unsupported Zendesk event type 'zen:event-type:{kind}'")
        return Outcome([item]) if not isinstance(item, str) else Outcome.ignore(item)

    def _trigger(self, payload: dict[str, Any]) -> Outcome:
        description = to_text(text_of(payload.get("ticket_description")), strip_quotes=True)
        description = _BYLINE.sub("", _RULE.sub("", description)).strip()
        tags = payload.get("tags")
        item = build(
            source=self.source,
            channel=self.channel,
            external_id=payload.get("ticket_id"),
            text=description,
            subject=text_of(payload.get("ticket_title")),
            name=text_of(payload.get("requester_full_name")),
            email=text_of(payload.get("requester_email")),
            url=text_of(payload.get("link")),
            created_at=as_datetime(payload.get("created_at")),
            tags=tags.split() if isinstance(tags, str) else None,
            conversation=payload.get("ticket_id"),
        )
        return Outcome([item]) if not isinstance(item, str) else Outcome.ignore(item)
