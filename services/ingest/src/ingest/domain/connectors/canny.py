"""Canny: ``canny-signature`` = base64 HMAC-SHA256 of ``canny-nonce`` under the API key, ``canny-timestamp``
inside the window, and each nonce accepted once (the caller records ``Verified.nonce``). ``post.created``
maps the post; ``comment.created`` a public comment; votes and other events are ignored."""

from __future__ import annotations

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
    unix_header,
)


class Canny:
    source: str = "canny"
    channel: Channel = "community"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        nonce = delivery.header("canny-nonce")
        if not nonce:
            raise VerificationFailed("nonce", "The `canny-nonce` header is missing.")
        sent_at = unix_header(delivery.header("canny-timestamp"), "canny-timestamp")
        require_signature(
            b64(hmac_digest(secret, nonce.encode())), delivery.header("canny-signature"), "canny-signature"
        )
        require_fresh(sent_at, delivery.received_at, options.tolerance, "canny-timestamp")
        return Verified(nonce=nonce)

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        event = dig(payload, "type")
        obj = as_dict(dig(payload, "object"))
        if event == "post.created":
            item = build(
                source=self.source,
                channel=self.channel,
                external_id=f"post:{obj.get('id')}" if obj.get("id") else None,
                text=text_of(obj.get("details")),
                subject=text_of(obj.get("title")),
                author_id=dig(obj, "author", "userID") or dig(obj, "author", "id"),
                email=text_of(dig(obj, "author", "email")),
                name=text_of(dig(obj, "author", "name")),
                url=text_of(obj.get("url")),
                created_at=as_datetime(obj.get("created")),
                tags=[f"board:{dig(obj, 'board', 'name')}"] if dig(obj, "board", "name") else None,
            )
        elif event == "comment.created":
            if obj.get("internal") is True:
                return Outcome.ignore("an internal comment is not customer feedback")
            item = build(
                source=self.source,
                channel=self.channel,
                external_id=f"comment:{obj.get('id')}" if obj.get("id") else None,
                text=text_of(obj.get("value")),
                subject=text_of(dig(obj, "post", "title")),
                author_id=dig(obj, "author", "userID") or dig(obj, "author", "id"),
                email=text_of(dig(obj, "author", "email")),
                name=text_of(dig(obj, "author", "name")),
                url=text_of(dig(obj, "post", "url")),
                created_at=as_datetime(obj.get("created")),
            )
        elif event == "vote.created":
            return Outcome.ignore("a vote carries no text of its own")
        else:
            return Outcome.ignore(f"unsupported Canny event type {event!r}")
        return Outcome([item]) if not isinstance(item, str) else Outcome.ignore(item)
