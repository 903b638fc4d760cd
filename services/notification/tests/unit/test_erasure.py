"""What an erasure changes in a delivery's stored payload: pure decisions."""

from __future__ import annotations

from typing import Any

from notification.domain.erasure import blanked_payload, digest_without, insight_after_erasure

RULE = {"id": "r1", "name": "all", "team": "support"}


def test_a_blanked_payload_keeps_type_rule_and_event_only() -> None:
    payload = {"type": "feedback", "rule": RULE, "event_id": "e1", "data": {"text": "Acme: crash"}}
    assert blanked_payload(payload, "q1") == {"type": "feedback", "rule": RULE, "event_id": "e1",
                                              "erased": {"request_id": "q1"}}
    assert blanked_payload({}, "q1") == {"erased": {"request_id": "q1"}}, "total on an odd payload"


def test_an_urgent_insight_is_blanked_and_others_lose_the_erased_evidence() -> None:
    def insight(kind: str, evidence: list[str]) -> dict[str, Any]:
        return {"type": "insight", "rule": RULE, "event_id": "e", "data": {"type": kind, "title": "From Acme",
                                                                           "evidence": evidence}}

    urgent = insight_after_erasure(insight("urgent_item", ["f1"]), {"f1"}, "q1")
    assert urgent is not None and "data" not in urgent and urgent["erased"] == {"request_id": "q1"}
    spike = insight_after_erasure(insight("spike", ["f1", "f2"]), {"f1"}, "q1")
    assert spike is not None and spike["data"]["evidence"] == ["f2"] and spike["data"]["title"] == "From Acme"
    assert insight_after_erasure(insight("spike", ["f2"]), {"f1"}, "q1") is None
    assert insight_after_erasure({"type": "insight"}, {"f1"}, "q1") is None


def test_a_filled_digest_loses_the_erased_lines_and_keeps_its_count() -> None:
    digest = {"type": "digest", "count": 2, "items": [{"event_id": "e1", "quote": "Acme"}, {"event_id": "e2"}]}
    assert digest_without(digest, {"e1"}) == {"type": "digest", "count": 2, "items": [{"event_id": "e2"}]}
    assert digest_without(digest, {"e9"}) is None
    assert digest_without({"type": "digest", "reason": "quiet_hours"}, {"e1"}) is None, "not filled yet"
