"""The JSON body a webhook receives. Pure.

    {"type": "feedback" | "insight",
     "rule": {"id": "<uuid>", "name": "billing bugs", "team": "billing"},
     "data": <the event's data: a feedback.classified.v1 item or an insights.v1 insight>,
     "event_id": "<the CloudEvent id>"}

The Standard Webhooks headers (``webhook-id``: the delivery id, the same on every attempt; ``webhook-timestamp``;
``webhook-signature``) sign exactly the bytes of :func:`encode_body`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["build_payload", "encode_body"]


def build_payload(*, event_kind: str, rule_id: str, rule_name: str, team: str, data: Mapping[str, Any],
                  event_id: str) -> dict[str, Any]:
    """The body of one delivery, as stored with it and sent on every attempt."""
    return {
        "type": event_kind,
        "rule": {"id": rule_id, "name": rule_name, "team": team},
        "data": dict(data),
        "event_id": event_id,
    }


def encode_body(payload: Mapping[str, Any]) -> str:
    """The exact text sent and signed: compact UTF-8 JSON (non-ASCII kept as is)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
