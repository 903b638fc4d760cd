from datetime import UTC, datetime, timedelta, timezone

from aggregation_testkit import classified

from aggregation.domain.items import as_utc, feedback_row, should_apply, theme_rows


def test_a_new_item_is_always_applied() -> None:
    assert should_apply(None, 1)
    assert should_apply(None, 5)


def test_only_a_newer_revision_replaces_the_stored_one() -> None:
    assert should_apply(1, 2)
    assert should_apply(2, 7)
    assert not should_apply(2, 2), "a duplicate changes nothing"
    assert not should_apply(3, 2), "a revision arriving late changes nothing"


def test_row_carries_the_filter_columns_in_utc_and_the_full_data() -> None:
    paris = timezone(timedelta(hours=1))
    item = classified(created_at=datetime(2025, 3, 1, 13, 0, tzinfo=paris), product_area="payments",
                      classified_at=datetime(2025, 3, 1, 13, 5, tzinfo=paris))
    row = feedback_row(item)
    assert row.created_at == datetime(2025, 3, 1, 12, 0, tzinfo=UTC) and row.created_at.utcoffset() == timedelta(0)
    assert row.classified_at == datetime(2025, 3, 1, 12, 5, tzinfo=UTC)
    assert (row.kind, row.sentiment_label, row.sentiment_score, row.urgency) == ("bug", "negative", -0.8, "normal")
    assert (row.customer_id, row.customer_plan, row.customer_mrr) == ("acme", "enterprise", 1200)
    assert row.product_area == "payments" and row.text == "Checkout crashes"
    assert row.data == item.model_dump(mode="json", by_alias=True)
    assert row.values()["feedback_id"] == str(item.feedback_id)


def test_theme_rows_are_distinct_and_keep_the_highest_confidence() -> None:
    item = classified(themes=[{"id": "a", "name": "A", "confidence": 0.4}, {"id": "b", "name": "B", "confidence": 0.7},
                              {"id": "a", "name": "A", "confidence": 0.6}])
    rows = {r.theme_id: r.confidence for r in theme_rows(item)}
    assert rows == {"a": 0.6, "b": 0.7}
    assert theme_rows(classified(themes=[])) == []


def test_naive_datetimes_are_taken_as_utc() -> None:
    assert as_utc(datetime(2025, 1, 1, 8)) == datetime(2025, 1, 1, 8, tzinfo=UTC)
