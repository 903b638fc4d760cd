"""Standard Webhooks (https://www.standardwebhooks.com/): ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{webhook-id}.{webhook-timestamp}.{body}">`` (space-separated list; any match passes), key = base64 of a
``whsec_`` secret, timestamp within the window. The body is what ``POST /v1/feedback`` takes (one item or a list):
the generic, signed way for any tool to send feedback.

The signature is the ``standardwebhooks`` package's (:meth:`Webhook.sign`). Its ``verify`` is not used whole: it
measures a fixed five minutes against the wall clock and names no header in its errors, while the window here is
``INGEST_WEBHOOK_TOLERANCE_SECONDS`` against the delivery's arrival and every failure names its header. A secret
without the ``whsec_`` prefix is used as the key's bytes (the package would read it as base64)."""

from __future__ import annotations

import binascii
from typing import Any

from pydantic import TypeAdapter, ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from feedbackloop.contracts.events import Channel
from ingest.domain.connectors.base import (
    ConnectorOptions,
    Delivery,
    Outcome,
    VerificationFailed,
    Verified,
    require_fresh,
    same,
    unix_header,
)
from ingest.domain.feedback import FeedbackIn

_items = TypeAdapter(list[FeedbackIn])


def _webhook(secret: str) -> Webhook:
    """A ``whsec_`` secret is base64 as the spec says; any other string (or undecodable base64) is the key's bytes."""
    if secret.startswith("whsec_"):
        try:
            return Webhook(secret)
        except (binascii.Error, ValueError, EmptyWebhookSecretError):
            pass
    return Webhook(secret.encode())


def standard_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1,`` signature of ``body`` for ``webhook-id`` ``msg_id`` sent at ``timestamp`` (Unix seconds)."""
    return _webhook(secret).sign(msg_id, unix_header(timestamp, "webhook-timestamp"), body)


class StandardWebhooks:
    source: str = "standard"
    channel: Channel = "api"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        msg_id = delivery.header("webhook-id")
        if not msg_id:
            raise VerificationFailed("signature", "The `webhook-id` header is missing.")
        stamp = delivery.header("webhook-timestamp") or ""
        sent_at = unix_header(stamp, "webhook-timestamp")
        expected = _webhook(secret).sign(msg_id, sent_at, delivery.body)
        given = (delivery.header("webhook-signature") or "").split()
        if not given:
            raise VerificationFailed("signature", "The `webhook-signature` header is missing.")
        if not any(same(expected, candidate) for candidate in given):
            raise VerificationFailed("signature", "No `webhook-signature` entry matches the body.")
        require_fresh(sent_at, delivery.received_at, options.tolerance, "webhook-timestamp")
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        entries = payload if isinstance(payload, list) else [payload]
        if not entries:
            return Outcome.ignore("an empty list holds no feedback item")
        try:
            items = _items.validate_python(entries)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return Outcome.ignore(f"not a feedback item: {where}: {first['msg']}")
        # signed with the integrator's key, not the vendor's: a vendor's source name is not theirs to use
        from ingest.domain.reserved import RESERVED_SOURCES  # here: reserved imports this package

        taken = sorted({item.source for item in items} & RESERVED_SOURCES)
        if taken:
            return Outcome.ignore(f"source `{taken[0]}` is reserved for its own signed webhook; nothing was stored")
        return Outcome(items)
