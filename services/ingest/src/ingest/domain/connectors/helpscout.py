"""Help Scout: ``X-HelpScout-Signature`` = base64 HMAC-SHA1 of the body; the event is in ``X-HelpScout-Event``.

``convo.created`` / ``convo.customer.reply.created`` (and the SDK's bare ``convo``) map the conversation;
``satisfaction.ratings`` maps a CSAT rating (great/okay/not good → 3/2/1 of 3) with its comment;
``helpscout.test`` is answered; agent events are ignored."""

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

_RATINGS = {"great": 3, "okay": 2, "ok": 2, "not good": 1, "bad": 1}


class HelpScout:
    source: str = "helpscout"
    channel: Channel = "email"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        verify_body_hmac(delivery, secret, header="x-helpscout-signature", algorithm="sha1", encoding="base64")
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        event = delivery.header("x-helpscout-event") or ""
        if event == "helpscout.test":
            return Outcome(ignored="test event", reply={"ok": True})
        if event in ("convo", "convo.created", "convo.customer.reply.created"):
            return self._conversation(event, payload)
        if event == "satisfaction.ratings":
            return self._rating(payload)
        return Outcome.ignore(f"unsupported Help Scout event {event!r}")

    def _conversation(self, event: str, convo: Any) -> Outcome:
        if not isinstance(convo, dict):
            return Outcome.ignore("the body is not a conversation object")
        thread = as_dict(dig(convo, "_embedded", "threads", 0))
        if event == "convo.customer.reply.created" and thread:
            external = f"{convo.get('id')}:thread:{thread.get('id')}"
        else:
            external = str(convo.get("id"))
        creator = as_dict(convo.get("createdBy"))
        body = text_of(thread.get("body")) if thread.get("type") == "customer" else None
        tags = [dig(t, "tag") for t in as_list(convo.get("tags")) if isinstance(dig(t, "tag"), str)]
        mailbox = convo.get("mailboxId")
        item = build(
            source=self.source,
            channel="chat" if convo.get("type") == "chat" else self.channel,
            external_id=external if convo.get("id") is not None else None,
            text=to_text(body or text_of(convo.get("preview")), strip_quotes=True),
            subject=text_of(convo.get("subject")),
            author_id=dig(convo, "primaryCustomer", "id") or creator.get("id"),
            email=text_of(creator.get("email")) if creator.get("type") == "customer" else None,
            url=(
                f"https://secure.helpscout.net/conversation/{convo.get('id')}/{convo.get('number')}"
                if convo.get("number") is not None
                else text_of(dig(convo, "_links", "self", "href"))
            ),
            created_at=as_datetime(convo.get("createdAt")),
            tags=[t for t in tags if t] + ([f"mailbox:{mailbox}"] if mailbox is not None else []),
        )
        return Outcome([item]) if not isinstance(item, str) else Outcome.ignore(item)

    def _rating(self, payload: Any) -> Outcome:
        score = _RATINGS.get(str(dig(payload, "rating") or "").lower())
        item = build(
            source=self.source,
            channel="survey",
            external_id=f"rating:{dig(payload, 'id')}" if dig(payload, "id") is not None else None,
            text=text_of(dig(payload, "comments")) or f"Satisfaction rating: {dig(payload, 'rating')}",
            author_id=dig(payload, "customer", "id"),
            email=text_of(dig(payload, "customer", "email")),
            rating=("csat", float(score), 3) if score else None,
            created_at=as_datetime(dig(payload, "createdAt")),
        )
        return Outcome([item]) if not isinstance(item, str) else Outcome.ignore(item)
