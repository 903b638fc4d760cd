"""The spike test: is this hour's volume of a theme (or product area) far above its own baseline? Pure.

Baseline (robust, seasonality-aware, copes with low counts):

1. history: the ``history_days`` (28) whole days before the hour, or fewer when the store is younger;
   no verdict with under ``min_history_days`` (3) of history.
2. level: the key's daily totals over that history, trimmed (the ⌈n/7⌉ largest and smallest days
   dropped, so a past incident does not raise the bar), averaged, divided by 24.
3. season: two factors read from the *overall* volume (many more items than one theme, hence stable),
   each shrunk towards 1 by a prior of 20 items: hour of day (the same hour ±1 over the history vs
   the average hour) and, with two weeks of history or more, day of week (the same weekday vs the
   average day).
4. expected = max(level x hour factor x weekday factor, ``min_expected``); for the hour still running,
   scaled by the share of it that has elapsed (at least a quarter).

Test: the upper tail P(X ≥ observed) of a negative binomial with that mean and dispersion ``nb_size``
(variance μ + μ²/size: over-dispersed like real feedback). A spike needs p < ``alpha``, at least
``min_count`` items and at least ``min_ratio`` x expected — all configurable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aggregation.domain.series import DAY, HOUR, HourlySeries
from aggregation.domain.stats import nb_upper_tail, trimmed_mean

__all__ = ["SpikeConfig", "SpikeVerdict", "expected_count", "judge_spike"]


@dataclass(frozen=True)
class SpikeConfig:
    history_days: int = 28
    min_history_days: int = 3
    alpha: float = 1e-5
    nb_size: float = 5.0
    min_count: int = 5
    min_ratio: float = 3.0
    min_expected: float = 0.2
    prior_items: float = 20.0


@dataclass(frozen=True)
class SpikeVerdict:
    observed: int
    expected: float
    p_value: float
    is_spike: bool

    @property
    def ratio(self) -> float:
        return self.observed / self.expected if self.expected > 0 else math.inf


def expected_count(key: HourlySeries, overall: HourlySeries, hour: int, first_seen: int, config: SpikeConfig,
                   *, elapsed: float = 1.0) -> float | None:
    """Expected items of ``key`` in ``hour`` (epoch seconds); None without enough history.

    ``first_seen`` is the start of the store's history (the oldest hour with any item); ``elapsed`` is
    the share of the hour that has passed (1.0 for a past hour).
    """
    days = min(config.history_days, (hour - first_seen) // DAY)
    if days < config.min_history_days:
        return None
    begin = hour - days * DAY
    daily = [key.total(hour - (k + 1) * DAY, hour - k * DAY) for k in range(days)]
    level = trimmed_mean(daily, math.ceil(days / 7)) / 24

    overall_total = overall.total(begin, hour)
    mean_hour = overall_total / (days * 24)
    same_hours = sum(overall.total(hour - k * DAY - HOUR, hour - k * DAY + 2 * HOUR) for k in range(1, days + 1))
    expected_same = mean_hour * 3 * days
    hour_factor = (same_hours + config.prior_items) / (expected_same + config.prior_items)

    weekday_factor = 1.0
    if days >= 14:
        day_start = hour - hour % DAY
        weeks = days // 7
        same_days = sum(overall.total(day_start - w * 7 * DAY, day_start - w * 7 * DAY + DAY)
                        for w in range(1, weeks + 1))
        expected_days = mean_hour * 24 * weeks
        weekday_factor = (same_days + config.prior_items) / (expected_days + config.prior_items)

    expected = max(level * hour_factor * weekday_factor, config.min_expected)
    return expected * min(max(elapsed, 0.25), 1.0)


def judge_spike(observed: int, expected: float, config: SpikeConfig) -> SpikeVerdict:
    p = nb_upper_tail(observed, expected, config.nb_size)
    spike = observed >= config.min_count and observed >= config.min_ratio * expected and p < config.alpha
    return SpikeVerdict(observed, expected, p, spike)
