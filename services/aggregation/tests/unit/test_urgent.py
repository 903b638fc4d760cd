import uuid
from datetime import UTC, datetime

from aggregation_testkit import classified

from aggregation.domain.urgent import urgent_insight, urgent_insight_id

NOW = datetime(2025, 3, 2, tzinfo=UTC)


def test_a_critical_item_yields_one_urgent_insight() -> None:
    item = classified(urgency="critical", kind="bug",
                      themes=[{"id": "a", "name": "A", "confidence": 0.3}, {"id": "b", "name": "B", "confidence": 0.8}])
    insight = urgent_insight(item, already_flagged=False, now=NOW)
    assert insight is not None
    assert insight.insight_id == uuid.uuid5(item.feedback_id, "urgent_item") == urgent_insight_id(item.feedback_id)
    assert insight.type == "urgent_item" and insight.severity == "critical"
    assert insight.title == "Critical bug from Acme (enterprise)"
    assert insight.evidence == [item.feedback_id]
    assert insight.window.from_ == insight.window.to == item.created_at
    assert insight.metrics == {} and insight.created_at == NOW and insight.theme == "b"


def test_title_names_kind_and_falls_back_to_the_customer_id() -> None:
    item = classified(urgency="critical", kind="feature_request", customer={"id": "globex"}, themes=[])
    insight = urgent_insight(item, already_flagged=False, now=NOW)
    assert insight is not None and insight.title == "Critical feature request from globex" and insight.theme is None
    anonymous = urgent_insight(classified(urgency="critical", customer={}), already_flagged=False, now=NOW)
    assert anonymous is not None and "unknown customer" in anonymous.title


def test_non_critical_items_yield_nothing() -> None:
    for urgency in ("low", "normal", "high"):
        assert urgent_insight(classified(urgency=urgency), already_flagged=False, now=NOW) is None


def test_critical_praise_or_positive_items_are_not_urgent() -> None:
    praise = classified(urgency="critical", kind="praise", sentiment={"label": "positive", "score": 0.9})
    assert urgent_insight(praise, already_flagged=False, now=NOW) is None
    happy_bug = classified(urgency="critical", kind="bug", sentiment={"label": "positive", "score": 0.4})
    assert urgent_insight(happy_bug, already_flagged=False, now=NOW) is None
    angry_bug = classified(urgency="critical", kind="bug", sentiment={"label": "neutral", "score": 0.0})
    assert urgent_insight(angry_bug, already_flagged=False, now=NOW) is not None


def test_an_item_is_flagged_once_in_its_life() -> None:
    # revision 2 becomes critical for the first time: flagged
    assert urgent_insight(classified(urgency="critical", revision=2), already_flagged=False, now=NOW) is not None
    # a later critical revision (or a redelivery) of a flagged item: nothing new
    assert urgent_insight(classified(urgency="critical", revision=3), already_flagged=True, now=NOW) is None


def test_the_insight_id_is_the_same_for_every_revision() -> None:
    one = urgent_insight(classified(urgency="critical", revision=1), already_flagged=False, now=NOW)
    two = urgent_insight(classified(urgency="critical", revision=2), already_flagged=False, now=NOW)
    assert one is not None and two is not None and one.insight_id == two.insight_id
