"""Sentiment-drop and KPI-drop tests between a current window and the one before it. Pure.

* sentiment drop: the negative share of the last ``window_hours`` (24) against the ``baseline_days`` (7)
  before; a drop needs ≥ ``min_items`` items in the window, a rise of ≥ ``min_increase`` (0.15) in the
  share and a pooled two-proportion z ≥ ``z`` (3.0).
* KPI drop: NPS and CSAT over the last ``kpi_window_days`` (7) against the 7 days before; a drop needs
  ≥ ``min_responses`` ratings on each side, a fall of ≥ ``min_points`` and z ≤ -``z`` (for NPS the
  variance of a difference of two multinomial estimates; for CSAT the two-proportion test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aggregation.domain.stats import nps_score_and_variance, two_proportion_z

__all__ = ["DropConfig", "DropVerdict", "csat_drop", "nps_drop", "sentiment_drop"]


@dataclass(frozen=True)
class DropConfig:
    window_hours: int = 24
    baseline_days: int = 7
    min_items: int = 10
    min_increase: float = 0.15
    z: float = 3.0
    kpi_window_days: int = 7
    min_responses: int = 30
    min_nps_points: float = 10.0
    min_csat_points: float = 5.0


@dataclass(frozen=True)
class DropVerdict:
    current: float
    previous: float
    z: float
    is_drop: bool


def sentiment_drop(neg_now: int, n_now: int, neg_before: int, n_before: int, config: DropConfig) -> DropVerdict:
    """``current``/``previous`` are negative shares (0..1); a drop in sentiment is a rise in that share."""
    share_now = neg_now / n_now if n_now else 0.0
    share_before = neg_before / n_before if n_before else 0.0
    z = two_proportion_z(neg_now, n_now, neg_before, n_before)
    drop = (n_now >= config.min_items and n_before >= config.min_items
            and share_now - share_before >= config.min_increase and z >= config.z)
    return DropVerdict(round(share_now, 4), round(share_before, 4), round(z, 3), drop)


def nps_drop(now: tuple[int, int, int], before: tuple[int, int, int], config: DropConfig) -> DropVerdict:
    """``now``/``before`` are (promoters, detractors, responses)."""
    score_now, var_now = nps_score_and_variance(*now)
    score_before, var_before = nps_score_and_variance(*before)
    se = math.sqrt(var_now + var_before)
    z = (score_now - score_before) / se if se > 0 else 0.0
    drop = (now[2] >= config.min_responses and before[2] >= config.min_responses
            and score_before - score_now >= config.min_nps_points and z <= -config.z)
    return DropVerdict(round(score_now, 2), round(score_before, 2), round(z, 3), drop)


def csat_drop(now: tuple[int, int], before: tuple[int, int], config: DropConfig) -> DropVerdict:
    """``now``/``before`` are (satisfied, responses)."""
    share_now = 100 * now[0] / now[1] if now[1] else 0.0
    share_before = 100 * before[0] / before[1] if before[1] else 0.0
    z = two_proportion_z(now[0], now[1], before[0], before[1])
    drop = (now[1] >= config.min_responses and before[1] >= config.min_responses
            and share_before - share_now >= config.min_csat_points and z <= -config.z)
    return DropVerdict(round(share_now, 2), round(share_before, 2), round(z, 3), drop)
