from datetime import UTC, datetime, timedelta

from aggregation_testkit import classified

from aggregation.domain.items import BACKDATED_AFTER, feedback_row, is_backdated
from aggregation.domain.kpis import backdated_definition, kpis_of, time_to_classify_caption
from aggregation.domain.rollups import Measures

T = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_an_item_created_over_an_hour_before_it_was_received_is_backdated() -> None:
    assert timedelta(hours=1) == BACKDATED_AFTER
    assert not is_backdated(T, T + timedelta(minutes=5))
    assert not is_backdated(T, T + timedelta(hours=1)), "exactly the limit is still live"
    assert is_backdated(T, T + timedelta(hours=1, seconds=1))
    assert is_backdated(T - timedelta(days=365), T), "last year's tickets imported today"
    assert not is_backdated(T + timedelta(minutes=10), T), "a clock ahead of ingest's is not an import"


def test_the_stored_row_says_whether_the_item_is_backdated() -> None:
    live = classified(created_at=T, received_at=T + timedelta(seconds=30), classified_at=T + timedelta(seconds=32))
    imported = classified("2", created_at=T - timedelta(days=40), received_at=T, classified_at=T + timedelta(seconds=3))
    assert not feedback_row(live).backdated and feedback_row(live).classify_seconds == 32
    row = feedback_row(imported)
    assert row.backdated and row.values()["backdated"] is True
    assert row.classify_seconds == 40 * 86400 + 3, "the fact is kept; the KPI decides what to leave out"


def test_the_kpis_carry_how_many_imports_the_median_leaves_out() -> None:
    kpis = kpis_of(Measures(count=7), 2.5, 3)
    assert kpis.median_time_to_classify_s == 2.5 and kpis.backdated_excluded == 3
    assert kpis_of(Measures(), None).backdated_excluded == 0


def test_the_caption_says_what_is_measured_and_what_is_left_out() -> None:
    assert time_to_classify_caption(0) == "median created → classified, items received live"
    assert time_to_classify_caption(1).endswith("items received live; 1 back-dated import excluded")
    assert time_to_classify_caption(3312).endswith("; 3,312 back-dated imports excluded")
    assert backdated_definition() == "created more than 1 h before it was received"
