"""Intercom: ``X-Hub-Signature: sha1=`` hex HMAC-SHA1 of the body under the app's client secret (no timestamp).

Topics: ``conversation.user.created`` (the opening message), ``conversation.user.replied`` (the customer's
newest part), ``ticket.created``; ``ping`` is answered; admin replies and other topics are ignored. Every item
carries its conversation as ``conversation`` (``intercom``, the conversation id; a customer ticket's ``id``, which
the conversations API takes too): where a reply goes when its loop closes."""

from __future__ import annotations

from typing import Any

from feedbackloop.contracts.events import Channel
from ingest.domain.connectors.base import (
    ConnectorOptions,
    Delivery,
    Outcome,
    Verified,
    as_datetime,
    as_dict,
    as_list,
    build,
    dig,
    text_of,
)
from ingest.domain.connectors.hmac_schemes import verify_body_hmac
from ingest.domain.text import to_text


class Intercom:
    source: str = "intercom"
    channel: Channel = "chat"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        verify_body_hmac(delivery, secret, header="x-hub-signature", algorithm="sha1", encoding="hex", prefix="sha1=")
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        topic = dig(payload, "topic")
        item = as_dict(dig(payload, "data", "item"))
        if topic == "ping":
            return Outcome(ignored="ping", reply={"ok": True, "topic": "ping"})
        if topic == "conversation.user.created":
            message = as_dict(item.get("conversation_message"))
            built = build(
                source=self.source,
                channel=self.channel,
                external_id=item.get("id"),
                text=to_text(text_of(message.get("body")), strip_quotes=True),
                subject=to_text(text_of(message.get("subject"))),
                author_id=dig(item, "user", "user_id") or dig(item, "user", "id"),
                email=text_of(dig(item, "user", "email")),
                name=text_of(dig(item, "user", "name")),
                url=text_of(dig(item, "links", "conversation_web")),
                created_at=as_datetime(item.get("created_at")),
                conversation=item.get("id"),
            )
        elif topic == "conversation.user.replied":
            parts = as_list(dig(item, "conversation_parts", "conversation_parts"))
            part = next((p for p in reversed(parts) if dig(p, "author", "type") in ("user", "lead")), None)
            if part is None:
                return Outcome.ignore("the reply has no customer part")
            built = build(
                source=self.source,
                channel=self.channel,
                external_id=f"{item.get('id')}:part:{part.get('id')}",
                text=to_text(text_of(part.get("body")), strip_quotes=True),
                author_id=dig(part, "author", "id"),
                email=text_of(dig(part, "author", "email")),
                name=text_of(dig(part, "author", "name")),
                url=text_of(dig(item, "links", "conversation_web")),
                created_at=as_datetime(part.get("created_at")),
                conversation=item.get("id"),
            )
        elif topic == "ticket.created":
            attributes = as_dict(item.get("ticket_attributes"))
            contact = as_dict(dig(item, "contacts", "contacts", 0))
            built = build(
                source=self.source,
                channel="ticket",
                external_id=f"ticket:{item.get('id')}" if item.get("id") is not None else None,
                text=to_text(text_of(attributes.get("_default_description_")), strip_quotes=True),
                subject=text_of(attributes.get("_default_title_")),
                author_id=contact.get("external_id") or contact.get("id"),
                email=text_of(contact.get("email")),
                customer_id=item.get("company_id"),
                created_at=as_datetime(item.get("created_at")),
                conversation=item.get("id"),
            )
        elif isinstance(topic, str) and topic.startswith("conversation.admin."):
            return Outcome.ignore(f"{topic} is an agent's action, not customer text")
        else:
            return Outcome.ignore(f"unsupported Intercom topic {topic!r}")
        return Outcome([built]) if not isinstance(built, str) else Outcome.ignore(built)
