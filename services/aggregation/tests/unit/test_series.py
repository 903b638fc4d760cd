"""Hourly series: totals over runs of hours, against a plain sum of the same values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aggregation.domain.series import HOUR, HourlySeries

START = 1_700_000_000 // HOUR * HOUR


@given(values=st.dictionaries(st.integers(-5, 60), st.floats(-1e6, 1e6, allow_nan=False), max_size=40),
       begin=st.integers(-10, 60), length=st.integers(0, 70))
def test_a_total_is_the_sum_of_the_hours_inside_the_series_and_the_run(values: dict[int, float], begin: int,
                                                                        length: int) -> None:
    hours = 48
    series = HourlySeries(START, hours, {START + h * HOUR: v for h, v in values.items()})
    expected = 0.0
    for h in range(hours):  # the hour order of the sums, as a dense prefix adds them
        if begin <= h < begin + length:
            expected += values.get(h, 0.0)
    kept = [values.get(h, 0.0) for h in range(hours)]
    dense = [0.0]
    for value in kept:
        dense.append(dense[-1] + value)
    first, last = min(max(begin, 0), hours), min(max(begin + length, 0), hours)
    assert series.total(START + begin * HOUR, START + (begin + length) * HOUR) == dense[last] - dense[first]
    if 0 <= begin < hours:
        assert series.at(START + begin * HOUR) == dense[begin + 1] - dense[begin]
    assert abs(series.total(START + begin * HOUR, START + (begin + length) * HOUR) - expected) <= 1e-6 * max(
        1.0, sum(abs(v) for v in kept))


def test_moments_off_the_hour_or_outside_the_series_are_not_counted() -> None:
    series = HourlySeries(START, 3, {START: 1.0, START + 30: 5.0, START + 3 * HOUR: 7.0, START - HOUR: 9.0,
                                     START + 2 * HOUR: 2.0})
    assert series.total(START - 10 * HOUR, START + 10 * HOUR) == 3.0
    assert [series.at(START + h * HOUR) for h in range(3)] == [1.0, 0.0, 2.0]
