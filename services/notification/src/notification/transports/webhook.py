"""Webhook channels: the stored payload, ``POST``-ed and signed per Standard Webhooks with the channel's secret.

Headers: ``webhook-id`` (the delivery id, the same on every attempt), ``webhook-timestamp`` (Unix seconds of this
attempt), ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of id.timestamp.body>``), and the attempt span's
``traceparent`` (and ``tracestate``), so the receiver continues the trace. Secrets: ``whsec_<base64>`` is decoded
as the Standard Webhooks spec says; any other secret is used as its UTF-8 bytes (``standardwebhooks.Webhook``
decodes every *str* secret as base64, so a plain one is passed as ``bytes``). Never logged.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from feedbackloop import tracing
from notification.domain.payload import encode_body
from notification.transports._http import post
from notification.transports.base import Message, SendOutcome

__all__ = ["WebhookSender", "signature_headers", "signer_for"]


def signer_for(secret: str) -> Webhook:
    """The Standard Webhooks signer of a channel secret: ``whsec_`` + base64, or else the secret's UTF-8 bytes."""
    return Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())


def signature_headers(secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for ``body`` sent at ``at``."""
    at = at.astimezone(UTC).replace(microsecond=0)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signer_for(secret).sign(msg_id, at, body),
    }


class WebhookSender:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    async def send(self, message: Message) -> SendOutcome:
        body = encode_body(message.payload)
        headers = {"content-type": "application/json",
                   **signature_headers(message.channel["secret"], message.delivery_id, body, datetime.now(UTC)),
                   **tracing.inject()}  # the current span: the attempt's, so the receiver continues it
        return await post(self._client, message.channel["url"], body, headers, timeout=self._timeout)
