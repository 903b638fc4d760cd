"""The spike detector on generated streams: planted spikes are found, a steady stream raises (almost) nothing.

The stream: 10 themes over 42 days, hourly Poisson counts with a daily curve (quiet nights, busy
afternoons) and quiet weekends — the seasonality the baseline must absorb. Every hour of the last 14
days of every theme is judged (3,360 windows). The rates are printed (``pytest -s``) for the README.
"""

from __future__ import annotations

import math
import random

from aggregation.domain.series import DAY, HOUR, HourlySeries
from aggregation.domain.spike import SpikeConfig, expected_count, judge_spike
from aggregation.domain.stats import nb_upper_tail

START = 1_740_960_000  # 2025-03-03 00:00 UTC, a Monday
DAYS = 42
RATES = [2.0, 1.2, 0.8, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05]  # mean items per hour of each theme


def _poisson(rng: random.Random, lam: float) -> int:
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def _shape(hour: int) -> float:
    h = (hour // HOUR) % 24
    weekday = (hour // DAY + 0) % 7  # START is a Monday
    daily = 0.3 + 1.4 * math.exp(-((h - 14) ** 2) / 18)
    return daily * (0.45 if weekday >= 5 else 1.15)


def _stream(seed: int) -> list[dict[int, float]]:
    rng = random.Random(seed)
    return [{START + i * HOUR: float(_poisson(rng, rate * _shape(START + i * HOUR))) for i in range(DAYS * 24)}
            for rate in RATES]


def _judge(themes: list[dict[int, float]], hours: list[int], config: SpikeConfig) -> list[tuple[int, int]]:
    overall: dict[int, float] = {}
    for series in themes:
        for t, c in series.items():
            overall[t] = overall.get(t, 0.0) + c
    all_series = HourlySeries(START, DAYS * 24, overall)
    found = []
    for index, series in enumerate(themes):
        s = HourlySeries(START, DAYS * 24, series)
        for hour in hours:
            expected = expected_count(s, all_series, hour, START, config)
            assert expected is not None
            if judge_spike(int(series[hour]), expected, config).is_spike:
                found.append((index, hour))
    return found


def test_negative_binomial_tail_matches_known_values() -> None:
    assert abs(nb_upper_tail(5, 1.0, math.inf) - 0.003659846827) < 1e-9  # Poisson(1): P(X ≥ 5)
    assert nb_upper_tail(0, 3.0, 5.0) == 1.0
    assert nb_upper_tail(30, 1.0, 5.0) < nb_upper_tail(30, 1.0, 1.0), "more dispersion, fatter tail"
    assert 0 < nb_upper_tail(400, 2.0, math.inf) < 1e-300 or nb_upper_tail(400, 2.0, math.inf) == 0.0


def test_steady_streams_raise_few_false_positives_and_planted_spikes_are_found() -> None:
    config = SpikeConfig()
    judged = [START + (DAYS - 14) * DAY + i * HOUR for i in range(14 * 24)]
    windows = false_positives = 0
    planted = detected = 0
    for seed in range(3):
        themes = _stream(seed)
        false_positives += len(_judge(themes, judged, config))
        windows += len(themes) * len(judged)

        # The same stream with spikes planted: x4 the usual volume (at least 8 items) in 40 random hours.
        rng = random.Random(100 + seed)
        spiked = [dict(s) for s in themes]
        targets = set()
        while len(targets) < 40:
            targets.add((rng.randrange(len(RATES)), rng.choice(judged)))
        for index, hour in targets:
            usual = RATES[index] * _shape(hour)
            spiked[index][hour] += max(8, round(3 * usual)) + _poisson(rng, usual)
        found = set(_judge(spiked, judged, config))
        planted += len(targets)
        detected += len(targets & found)
    fp_rate, detection_rate = false_positives / windows, detected / planted
    print(f"\nspike detector: {false_positives} false positives in {windows} steady windows "
          f"({fp_rate:.4%}); {detected}/{planted} planted spikes found ({detection_rate:.1%})")
    assert fp_rate < 0.002, f"{false_positives} false positives in {windows} windows"
    assert detection_rate >= 0.9, f"found {detected} of {planted} planted spikes"
