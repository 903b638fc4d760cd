"""The sentiment, NPS and CSAT drop tests (``domain/drops.py``): thresholds on each side, empty windows."""

from __future__ import annotations

import math

import pytest

from aggregation.domain.drops import DropConfig, DropVerdict, csat_drop, nps_drop, sentiment_drop

CONFIG = DropConfig()


def _z(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    pooled = (hits_a + hits_b) / (n_a + n_b)
    return (hits_a / n_a - hits_b / n_b) / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))


def test_a_rise_in_the_negative_share_is_a_sentiment_drop() -> None:
    verdict = sentiment_drop(30, 50, 50, 500, CONFIG)
    assert (verdict.current, verdict.previous) == (0.6, 0.1)
    assert verdict.z == round(_z(30, 50, 50, 500), 3) and verdict.z > 9
    assert verdict.is_drop


def test_a_sentiment_drop_needs_items_on_both_sides() -> None:
    # 9 items in the window: one short of min_items, however clear the rise
    assert not sentiment_drop(9, 9, 10, 100, CONFIG).is_drop
    assert sentiment_drop(10, 10, 10, 100, CONFIG).is_drop
    # a baseline of 9 items is too short as well
    assert not sentiment_drop(10, 10, 0, 9, CONFIG).is_drop
    assert sentiment_drop(10, 10, 0, 10, CONFIG).is_drop


def test_empty_windows_are_no_drop_and_no_error() -> None:
    verdict = sentiment_drop(0, 0, 0, 0, CONFIG)
    assert (verdict.current, verdict.previous, verdict.z, verdict.is_drop) == (0.0, 0.0, 0.0, False)
    assert sentiment_drop(5, 10, 0, 0, CONFIG).z == 0.0
    nps = nps_drop((0, 0, 0), (0, 0, 0), CONFIG)
    assert (nps.current, nps.previous, nps.z, nps.is_drop) == (0.0, 0.0, 0.0, False)
    csat = csat_drop((0, 0), (0, 0), CONFIG)
    assert (csat.current, csat.previous, csat.z, csat.is_drop) == (0.0, 0.0, 0.0, False)


def test_the_share_must_rise_by_min_increase() -> None:
    # large samples, so z is far past 3 either way: only the 15-point rise decides
    assert not sentiment_drop(2400, 10_000, 1000, 10_000, CONFIG).is_drop, "14 points"
    assert sentiment_drop(2500, 10_000, 1000, 10_000, CONFIG).is_drop, "15 points"


def test_the_rise_must_be_significant() -> None:
    # +30 points on few items: z = 2.16, under 3
    verdict = sentiment_drop(5, 10, 20, 100, CONFIG)
    assert verdict.current - verdict.previous == pytest.approx(0.3)
    assert verdict.z == pytest.approx(_z(5, 10, 20, 100), abs=1e-3) == pytest.approx(2.158, abs=1e-3)
    assert not verdict.is_drop
    assert sentiment_drop(5, 10, 20, 100, DropConfig(z=2.15)).is_drop
    assert not sentiment_drop(5, 10, 20, 100, DropConfig(z=2.16)).is_drop


def test_a_fall_in_the_negative_share_is_not_a_drop() -> None:
    verdict = sentiment_drop(0, 50, 250, 500, CONFIG)
    assert verdict.z < -3 and not verdict.is_drop


def test_an_nps_drop_needs_ten_points_and_significance() -> None:
    # 60 promoters / 10 detractors of 100 (NPS 50) -> 30 / 30 of 100 (NPS 0)
    verdict = nps_drop((30, 30, 100), (60, 10, 100), CONFIG)
    assert (verdict.current, verdict.previous) == (0.0, 50.0)
    assert verdict.z < -3 and verdict.is_drop


def test_an_nps_fall_of_under_ten_points_is_not_a_drop_however_significant() -> None:
    big = 100_000
    under = nps_drop((40_100, 10_000, big), (50_000, 10_000, big), CONFIG)  # NPS 40 -> 30.1
    assert (under.current, under.previous) == (30.1, 40.0) and under.z < -30 and not under.is_drop
    over = nps_drop((39_900, 10_000, big), (50_000, 10_000, big), CONFIG)  # NPS 40 -> 29.9
    assert (over.current, over.previous) == (29.9, 40.0) and over.is_drop


def test_an_nps_drop_needs_min_responses_on_each_side() -> None:
    assert nps_drop((5, 20, 30), (20, 5, 30), CONFIG) == DropVerdict(-50.0, 50.0, -5.071, True)
    assert not nps_drop((5, 20, 29), (20, 5, 30), CONFIG).is_drop, "29 ratings now"
    assert not nps_drop((5, 20, 30), (20, 5, 29), CONFIG).is_drop, "29 ratings before"


def test_unanimous_windows_have_no_variance_and_raise_no_nps_drop() -> None:
    # every rating a promoter, then every one a detractor: the multinomial variance is 0 on both sides, so z is 0
    verdict = nps_drop((0, 30, 30), (30, 0, 30), CONFIG)
    assert (verdict.current, verdict.previous, verdict.z, verdict.is_drop) == (-100.0, 100.0, 0.0, False)


def test_a_csat_drop_is_in_points_of_satisfied_share() -> None:
    verdict = csat_drop((120, 200), (180, 200), CONFIG)
    assert (verdict.current, verdict.previous) == (60.0, 90.0)
    assert verdict.z == round(_z(120, 200, 180, 200), 3) and verdict.is_drop


def test_a_csat_fall_just_under_min_points_is_not_a_drop() -> None:
    big = 100_000
    assert not csat_drop((85_001, big), (90_000, big), CONFIG).is_drop  # 4.999 points
    assert csat_drop((85_000, big), (90_000, big), CONFIG).is_drop  # 5 points
    assert not csat_drop((29, 29), (30, 30), CONFIG).is_drop, "too few ratings now"
    assert not csat_drop((0, 30), (30, 30), DropConfig(z=100.0)).is_drop, "not significant enough"
