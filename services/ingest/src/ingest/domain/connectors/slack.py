"""Slack Events API: ``X-Slack-Signature: v0=`` hex HMAC-SHA256 of ``v0:{X-Slack-Request-Timestamp}:{body}``
(computed by ``slack_sdk``'s :class:`~slack_sdk.signature.SignatureVerifier`), timestamp within the replay window
(``INGEST_WEBHOOK_TOLERANCE_SECONDS``, five minutes by default, against the delivery's arrival: the SDK's own
``is_valid`` fixes five minutes against the wall clock, so the window is checked here, after the signature).

``url_verification`` is answered with its challenge; ``message`` events from the channels in
``INGEST_SLACK_CHANNELS`` (empty: every channel) become chat items; bot messages, edits and other subtypes are
ignored."""

from __future__ import annotations

from typing import Any

from slack_sdk.signature import SignatureVerifier

from feedbackloop.contracts.events import Channel
from ingest.domain.connectors.base import (
    ConnectorOptions,
    Delivery,
    Outcome,
    Verified,
    as_datetime,
    as_dict,
    build,
    dig,
    require_fresh,
    require_signature,
    text_of,
    unix_header,
)

SIGNATURE = "x-slack-signature"
TIMESTAMP = "x-slack-request-timestamp"


def slack_signature(secret: str, timestamp: str, body: bytes) -> str | None:
    """The ``v0=`` signature Slack sends for ``body`` at ``timestamp``; None for a body that is not UTF-8 (the SDK
    signs text, and Slack sends nothing else: no signature can match it)."""
    try:
        return SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    except UnicodeDecodeError:
        return None


class Slack:
    source: str = "slack"
    channel: Channel = "chat"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        stamp = delivery.header(TIMESTAMP) or ""
        sent_at = unix_header(stamp, TIMESTAMP)
        expected = slack_signature(secret, stamp, delivery.body)
        require_signature(expected or "", delivery.header(SIGNATURE), SIGNATURE)
        require_fresh(sent_at, delivery.received_at, options.tolerance, TIMESTAMP)
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        kind = dig(payload, "type")
        if kind == "url_verification":
            return Outcome(ignored="url_verification", reply={"challenge": dig(payload, "challenge")})
        if kind != "event_callback":
            return Outcome.ignore(f"unsupported Slack payload type {kind!r}")
        event = as_dict(dig(payload, "event"))
        if event.get("type") != "message":
            return Outcome.ignore(f"unsupported Slack event type {event.get('type')!r}")
        if event.get("bot_id") or event.get("subtype"):
            return Outcome.ignore("bot messages, edits and other message subtypes are not customer feedback")
        channel = str(event.get("channel") or "")
        if options.slack_channels and channel not in options.slack_channels:
            return Outcome.ignore(f"channel {channel!r} is not on INGEST_SLACK_CHANNELS")
        team = payload.get("team_id") or event.get("team")
        item = build(
            source=self.source,
            channel=self.channel,
            external_id=f"{team}:{channel}:{event.get('ts')}" if event.get("ts") else None,
            text=text_of(event.get("text")),
            author_id=event.get("user"),
            customer_id=team,
            created_at=as_datetime(event.get("ts")),
            tags=[f"slack-channel:{channel}"] + (["thread-reply"] if event.get("thread_ts") else []),
        )
        return Outcome([item]) if not isinstance(item, str) else Outcome.ignore(item)
