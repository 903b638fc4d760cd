"""The pure decisions of an erasure request: whom it names, which items it matches, what an erased item keeps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from ingest.domain.erasure import NothingToErase, erased_item, erasure_event_id, erasure_target, matches
from ingest.domain.pseudonym import Pseudonymizer

KEY = Pseudonymizer(b"erasure-unit-test-key-0123456789")


def test_a_request_names_a_customer_or_an_author_and_never_keeps_the_address() -> None:
    target = erasure_target(" acme ", " Jane.Doe@Example.com ", KEY)
    assert target.customer_id == "acme"
    assert target.author_email_hash == KEY.email_hash("jane.doe@example.com")
    assert "example" not in repr(target)
    assert erasure_target(None, "jane@example.com", KEY).customer_id is None
    assert erasure_target("acme", "", KEY).author_email_hash is None


@pytest.mark.parametrize("customer, email", [(None, None), ("", "  "), ("   ", None)])
def test_a_request_naming_nobody_is_refused(customer: str | None, email: str | None) -> None:
    with pytest.raises(NothingToErase, match="customer_id or author_email"):
        erasure_target(customer, email, KEY)


def test_an_item_matches_by_either_name() -> None:
    jane = KEY.email_hash("jane@example.com")
    item = {"customer": {"id": "acme"}, "author": {"email_hash": jane}}
    assert matches(item, erasure_target("acme", None, KEY))
    assert matches(item, erasure_target(None, "JANE@example.com", KEY))
    assert matches(item, erasure_target("globex", "jane@example.com", KEY))
    assert not matches(item, erasure_target("globex", "john@example.com", KEY))
    assert not matches({"customer": {}, "author": {}}, erasure_target("acme", None, KEY))


def test_an_erased_item_keeps_its_id_and_times_only() -> None:
    request_id, at = uuid.uuid4(), datetime(2026, 12, 6, tzinfo=UTC)
    item = {"feedback_id": "f1", "source": "api", "channel": "api", "created_at": "c", "received_at": "r",
            "text": "secret", "subject": "s", "author": {"name": "Jane"}, "customer": {"id": "acme"},
            "tags": ["x"], "url": "https://x"}
    erased = erased_item(item, request_id, at)
    assert erased == {"feedback_id": "f1", "source": "api", "channel": "api", "created_at": "c",
                      "received_at": "r", "erased": {"request_id": str(request_id), "at": at.isoformat()}}


def test_the_event_id_is_derived_from_the_request() -> None:
    request_id = uuid.uuid4()
    assert erasure_event_id(request_id) == erasure_event_id(request_id) != erasure_event_id(uuid.uuid4())
