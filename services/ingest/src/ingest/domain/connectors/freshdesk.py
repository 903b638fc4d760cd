"""Freshdesk: no request signature. The automation rule's webhook sends either HTTP Basic auth whose password
is the secret, or ``?token=<secret>`` in the URL; either is compared in constant time. The JSON body is the
template in the README (``{"freshdesk_webhook": {...}}``, Freshdesk placeholders)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from feedbackloop.contracts.events import Channel
from ingest.domain.connectors.base import (
    ConnectorOptions,
    Delivery,
    Outcome,
    VerificationFailed,
    Verified,
    build,
    dig,
    same,
    text_of,
)
from ingest.domain.text import to_text

#: What users paste into Freshdesk: Admin → Automations → "Trigger webhook", content JSON.
AUTOMATION_TEMPLATE: dict[str, Any] = {
    "freshdesk_webhook": {
        "triggered_event": "{{triggered_event}}",
        "ticket_id": "{{ticket.id}}",
        "ticket_url": "{{ticket.url}}",
        "ticket_type": "{{ticket.ticket_type}}",
        "ticket_subject": "{{ticket.subject}}",
        "ticket_description": "{{ticket.description}}",
        "ticket_latest_public_comment": "{{ticket.latest_public_comment}}",
        "ticket_status": "{{ticket.status}}",
        "ticket_priority": "{{ticket.priority}}",
        "ticket_tags": "{{ticket.tags}}",
        "requester_name": "{{ticket.requester.name}}",
        "requester_email": "{{ticket.requester.email}}",
        "requester_id": "{{ticket.requester.id}}",
        "company_name": "{{ticket.company.name}}",
    }
}


class Freshdesk:
    source: str = "freshdesk"
    channel: Channel = "ticket"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        given = delivery.query.get("token")
        auth = delivery.header("authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
            except ValueError:  # binascii.Error, a non-ASCII header (the server decodes headers as Latin-1), bad UTF-8
                raise VerificationFailed("token", "The Basic credentials are not valid base64.") from None
            given = decoded.partition(":")[2] or decoded.partition(":")[0]
        if not given:
            raise VerificationFailed("token", "Send the secret as the Basic auth password or as `?token=`.")
        if not same(secret, given):
            raise VerificationFailed("token", "The token does not match.")
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        ticket = dig(payload, "freshdesk_webhook")
        if not isinstance(ticket, dict):
            return Outcome.ignore("the body has no `freshdesk_webhook` object (see the automation template)")
        event = str(ticket.get("triggered_event") or "")
        if "private" in event:
            return Outcome.ignore("a private note is not customer feedback")
        comment = to_text(text_of(ticket.get("ticket_latest_public_comment")), strip_quotes=True)
        is_note = "note_type" in event or "reply" in event
        external = ticket.get("ticket_id")
        if is_note and not comment:
            return Outcome.ignore(
                "the note's text is not in the payload: add ticket_latest_public_comment to the automation template"
            )
        if is_note:
            external = f"{external}:comment:{hashlib.sha256(comment.encode()).hexdigest()[:16]}"
        tags = ticket.get("ticket_tags")
        item = build(
            source=self.source,
            channel=self.channel,
            external_id=external if ticket.get("ticket_id") else None,
            text=comment
            if is_note and comment
            else to_text(text_of(ticket.get("ticket_description")), strip_quotes=True),
            subject=text_of(ticket.get("ticket_subject")),
            author_id=text_of(ticket.get("requester_id")),
            email=text_of(ticket.get("requester_email")),
            name=text_of(ticket.get("requester_name")),
            customer_name=text_of(ticket.get("company_name")),
            url=text_of(ticket.get("ticket_url")),
            tags=[t.strip() for t in tags.split(",")] if isinstance(tags, str) else None,
        )
        return Outcome([item]) if not isinstance(item, str) else Outcome.ignore(item)
