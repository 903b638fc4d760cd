"""The theme impact score. Pure.

    impact = (volume + affected_mrr / mrr_unit) x (1 + negative_share) x (1 + urgent_share)

* volume: items of the theme in the window;
* affected_mrr: the sum, over the *distinct* customers with items in the theme, of each customer's mrr
  (the average of the mrr its items carried), so one customer writing ten times counts its revenue once;
* mrr_unit (``AGGREGATION_IMPACT_MRR_UNIT``, default 100): each ``mrr_unit`` of affected revenue weighs
  as much as one more item;
* negative_share: negative items / items, doubling the weight of an all-negative theme;
* urgent_share: items of urgency high or critical / items, doubling it again when all are urgent.

So a theme hurting three enterprise accounts at 2,000 a month (3 + 60 = 63) outranks fifty free users
(50 + 0 = 50) with the same tone, while a loud theme of many customers still rises by volume.
"""

from __future__ import annotations

__all__ = ["impact_score"]


def impact_score(*, volume: int, negative: int, urgent: int, affected_mrr: float, mrr_unit: float) -> float:
    if volume <= 0:
        return 0.0
    base = volume + affected_mrr / mrr_unit
    return round(base * (1 + negative / volume) * (1 + urgent / volume), 3)
