from datetime import UTC, datetime

from aggregation_testkit import classified

from aggregation.domain.kpis import kpis_of
from aggregation.domain.rollups import (
    THEME_CUSTOMER_SEP,
    Measures,
    RollupKey,
    add_into,
    bucket_start,
    contributions,
    rollup_changes,
)


def _apply(state: dict[RollupKey, Measures], stored: dict[str, object], item: object) -> None:
    """What the service does: apply an event only when newer, moving the item's contributions."""
    old = stored.get(str(item.feedback_id))  # type: ignore[attr-defined]
    if old is not None and old.revision >= item.revision:  # type: ignore[attr-defined]
        return
    add_into(state, rollup_changes(old, item))  # type: ignore[arg-type]
    stored[str(item.feedback_id)] = item  # type: ignore[attr-defined]


def _clean(state: dict[RollupKey, Measures]) -> dict[RollupKey, dict[str, float | int]]:
    return {k: {n: round(v, 9) for n, v in m.values().items()} for k, m in state.items() if not m.is_zero()}


def test_buckets_follow_created_at_in_utc_and_weeks_start_monday() -> None:
    moment = datetime(2025, 3, 5, 14, 37, tzinfo=UTC)  # a Wednesday
    assert datetime.fromtimestamp(bucket_start(moment, "hour"), UTC) == datetime(2025, 3, 5, 14, tzinfo=UTC)
    assert datetime.fromtimestamp(bucket_start(moment, "day"), UTC) == datetime(2025, 3, 5, tzinfo=UTC)
    assert datetime.fromtimestamp(bucket_start(moment, "week"), UTC) == datetime(2025, 3, 3, tzinfo=UTC)
    assert bucket_start(moment, "total") == 0


def test_an_item_counts_once_per_dimension_and_bucket() -> None:
    item = classified(product_area="payments", urgency="high",
                      themes=[{"id": "checkout", "name": "Checkout", "confidence": 0.9},
                              {"id": "checkout", "name": "Checkout", "confidence": 0.5},
                              {"id": "billing", "name": "Billing", "confidence": 0.6}])
    cells = contributions(item)
    hour = bucket_start(item.created_at, "hour")
    assert cells[RollupKey("hour", hour, "theme", "checkout")].count == 1
    assert {k.key for k in cells if k.bucket == "day" and k.dimension == "theme"} == {"billing", "checkout"}
    assert cells[RollupKey("total", 0, "theme_customer", f"billing{THEME_CUSTOMER_SEP}acme")].mrr_sum == 1200
    m = cells[RollupKey("week", bucket_start(item.created_at, "week"), "all", "*")]
    assert (m.count, m.negative, m.urgent, m.sentiment_sum) == (1, 1, 1, -0.8)
    assert not any(k.dimension == "theme_customer" and k.bucket == "hour" for k in cells)
    none = contributions(classified("2", customer={}, product_area=None))
    assert RollupKey("total", 0, "plan", "unknown") in none and RollupKey("total", 0, "customer", "unknown") in none


def test_a_correction_moves_the_item_and_order_of_arrival_does_not_matter() -> None:
    first = classified("1")
    other = classified("2", created_at=datetime(2025, 2, 27, 9, 0, tzinfo=UTC))
    fixed = first.model_copy(update={"revision": 2, "sentiment": first.sentiment.model_copy(
        update={"label": "positive", "score": 0.6}), "themes": [first.themes[0].model_copy(
            update={"id": "billing", "name": "Billing"})]})
    orders = [[first, other, fixed], [fixed, first, other], [other, fixed, first, fixed, first]]
    results = []
    for order in orders:
        state: dict[RollupKey, Measures] = {}
        stored: dict[str, object] = {}
        for event in order:
            _apply(state, stored, event)
        results.append(_clean(state))
    assert results[0] == results[1] == results[2]
    expected: dict[RollupKey, Measures] = {}
    add_into(expected, contributions(fixed))
    add_into(expected, contributions(other))
    assert results[0] == _clean(expected), "only the newest revision counts, under its own labels"
    day = bucket_start(first.created_at, "day")
    assert RollupKey("day", day, "theme", "checkout") not in results[0]


def test_nps_and_csat_match_hand_computed_values() -> None:
    # NPS: 10, 9, 9 promoters; 8, 7 passives; 6, 3, 0 detractors → (3 - 3) / 8 = 0; add two 10s → (5 - 3) / 10 = 20.
    nps_values = [10, 9, 9, 8, 7, 6, 3, 0, 10, 10]
    # CSAT: 5, 4, 4, 3, 1 → 3 of 5 satisfied = 60 %.
    csat_values = [5, 4, 4, 3, 1]
    total = Measures()
    items = [classified(f"n{i}", rating={"kind": "nps", "value": v, "scale": 10}) for i, v in enumerate(nps_values)]
    items += [classified(f"c{i}", rating={"kind": "csat", "value": v, "scale": 5}) for i, v in enumerate(csat_values)]
    items += [classified("s", rating={"kind": "stars", "value": 5, "scale": 5}), classified("none")]
    for item in items:
        total.add(contributions(item)[RollupKey("total", 0, "all", "*")])
    kpis = kpis_of(total, 42.0)
    assert (kpis.nps, kpis.nps_responses) == (20.0, 10)
    assert (kpis.csat, kpis.csat_responses) == (60.0, 5)
    assert kpis.volume == 17 and kpis.negative_share == 1.0 and kpis.median_time_to_classify_s == 42.0
    assert kpis_of(Measures(), None).nps is None
