"""What leaves ingest: every field of a feedback.raw.v1 item pseudonymised, redacted or kept on purpose."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from feedbackloop.contracts import feedback_id_for
from ingest.domain.feedback import FeedbackIn, RedactionPolicy, normalize
from ingest.domain.pseudonym import Pseudonymizer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = b"test-pseudonym-key-0123456789abcdef"
POLICY = RedactionPolicy(Pseudonymizer(KEY))
ITEM = FeedbackIn.model_validate({
    "source": "api",
    "external_id": "jane.doe@example.com-6001",
    "text": "The export fails",
    "author": {"id": "user-7781", "email": " Jane.Doe@Example.com ", "name": "Jane Doe <jane.doe@example.com>"},
    "customer": {"id": "acme-corp", "name": "Acme, call 020 7946 0958", "plan": "enterprise", "mrr": 1200,
                 "owner": "sam", "contact": "jane.doe@example.com", "seats": 40, "nested": {"email": "x@y.example"}},
    "tags": ["vip", "callback 020 7946 0958", "vip"],
    "url": "https://app.example.com/report?user=jane.doe%40example.com&page=2",
})


def test_identity_fields_are_keyed_pseudonyms_not_raw_values() -> None:
    raw = normalize(ITEM, NOW, POLICY)
    assert raw.feedback_id == feedback_id_for("api", "jane.doe@example.com-6001"), "the id contract is unchanged"
    for value in (raw.external_id, raw.author.id, raw.author.email_hash):
        assert value is not None and len(value) == 64 and int(value, 16) >= 0
    assert raw.external_id != ITEM.external_id and raw.author.id != "user-7781"
    assert raw.customer.id == "acme-corp", "an account id, not a person: rules and per-account impact key on it"
    unsalted = hashlib.sha256(b"jane.doe@example.com").hexdigest()
    assert raw.author.email_hash != unsalted, "an unsalted SHA-256 anyone can recompute"
    assert raw.author.email_hash == hmac.new(KEY, b"email\x1fjane.doe@example.com", hashlib.sha256).hexdigest()
    # stable under one key (joins across events), different under another
    assert normalize(ITEM, NOW, POLICY) == raw
    other = normalize(ITEM, NOW, RedactionPolicy(Pseudonymizer(b"another-key-0123456789abcdef")))
    assert {other.external_id, other.author.id, other.author.email_hash}.isdisjoint(
        {raw.external_id, raw.author.id, raw.author.email_hash})


def test_free_text_fields_are_redacted_and_routing_fields_kept() -> None:
    raw = normalize(ITEM, NOW, POLICY)
    assert raw.author.name == "Jane Doe <[EMAIL]>"
    assert raw.tags == ["callback [PHONE]", "vip"]
    assert raw.url == "https://app.example.com/report?user=[EMAIL]&page=2"
    customer = raw.customer.model_dump()
    assert customer["name"] == "Acme, call [PHONE]"
    assert (customer["plan"], customer["mrr"], customer["owner"], customer["seats"]) == ("enterprise", 1200, "sam", 40)
    assert customer["contact"] == "[EMAIL]" and "nested" not in customer
    assert raw.redactions == {"email": 3, "phone": 2}


def test_no_raw_personal_value_is_in_the_published_item() -> None:
    published = normalize(ITEM, NOW, POLICY).model_dump_json()
    # the display name itself ("Jane Doe") and the account id ("acme-corp") are kept: see the README's list
    for leaked in ("jane.doe", "7946", "user-7781", "x@y.example", "6001"):
        assert leaked.lower() not in published.lower(), leaked


def test_a_short_key_is_refused_and_never_shown() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonymizer(b"short")
    assert "0123456789" not in repr(POLICY)
