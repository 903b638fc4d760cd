"""The theme impact score (``domain/impact.py``)."""

from __future__ import annotations

import pytest

from aggregation.domain.impact import impact_score


def test_volume_alone_with_a_neutral_tone() -> None:
    assert impact_score(volume=50, negative=0, urgent=0, affected_mrr=0.0, mrr_unit=100.0) == 50.0


def test_revenue_weighs_as_items_per_mrr_unit() -> None:
    # the docstring's example: three enterprise accounts at 2,000 a month outrank fifty free users
    enterprise = impact_score(volume=3, negative=0, urgent=0, affected_mrr=6000.0, mrr_unit=100.0)
    free = impact_score(volume=50, negative=0, urgent=0, affected_mrr=0.0, mrr_unit=100.0)
    assert enterprise == 63.0 and free == 50.0 and enterprise > free
    assert impact_score(volume=3, negative=0, urgent=0, affected_mrr=6000.0, mrr_unit=1000.0) == 9.0


def test_negative_and_urgent_shares_each_up_to_double_it() -> None:
    assert impact_score(volume=10, negative=10, urgent=0, affected_mrr=0.0, mrr_unit=100.0) == 20.0
    assert impact_score(volume=10, negative=10, urgent=10, affected_mrr=0.0, mrr_unit=100.0) == 40.0
    # (10 + 5) x 1.5 x 1.2
    assert impact_score(volume=10, negative=5, urgent=2, affected_mrr=500.0, mrr_unit=100.0) == 27.0


def test_rounded_to_three_places() -> None:
    # 3 x (1 + 1/3) x (1 + 1/3) = 5.333...
    assert impact_score(volume=3, negative=1, urgent=1, affected_mrr=0.0, mrr_unit=100.0) == 5.333


@pytest.mark.parametrize("volume", [0, -1])
def test_no_items_no_impact(volume: int) -> None:
    assert impact_score(volume=volume, negative=3, urgent=3, affected_mrr=9000.0, mrr_unit=100.0) == 0.0
