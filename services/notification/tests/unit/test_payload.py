"""The webhook body and its Standard Webhooks signature (verified with the reference library)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from notification.domain.payload import build_payload, encode_body
from notification.transports.webhook import signature_headers


def test_payload_shape() -> None:
    payload = build_payload(event_kind="feedback", rule_id="r1", rule_name="billing bugs", team="billing",
                            data={"kind": "bug", "text": "café"}, event_id="e1")
    assert payload == {"type": "feedback", "rule": {"id": "r1", "name": "billing bugs", "team": "billing"},
                       "data": {"kind": "bug", "text": "café"}, "event_id": "e1"}
    body = encode_body(payload)
    assert json.loads(body) == payload and "café" in body and ", " not in body


@pytest.mark.parametrize(("secret", "verifier"), [
    ("plain-text-secret", lambda: Webhook(b"plain-text-secret")),
    ("whsec_" + base64.b64encode(b"0123456789abcdef0123").decode(),
     lambda: Webhook("whsec_" + base64.b64encode(b"0123456789abcdef0123").decode())),
])
def test_signature_verifies_with_standardwebhooks(secret: str, verifier) -> None:  # type: ignore[no-untyped-def]
    body = encode_body({"type": "feedback", "data": {"x": 1}})
    headers = signature_headers(secret, "msg_1", body, datetime.now(UTC))
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert verifier().verify(body, headers) == {"type": "feedback", "data": {"x": 1}}
    with pytest.raises(WebhookVerificationError):
        verifier().verify(body.replace("1", "2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(b"another-secret").verify(body, headers)
