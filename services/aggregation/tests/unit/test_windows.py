"""Time windows (``domain/windows.py``): lengths, whole hours, the window before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from aggregation.domain.windows import MAX_WINDOW, Window, ceil_hour, is_whole_hour, parse_length, window_ending


@pytest.mark.parametrize(("text", "length"), [
    ("1h", timedelta(hours=1)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("4w", timedelta(weeks=4)),
    (" 30d ", timedelta(days=30)), ("366d", MAX_WINDOW), ("52w", timedelta(weeks=52)), ("8784h", MAX_WINDOW),
])
def test_lengths_parse(text: str, length: timedelta) -> None:
    assert parse_length(text) == length


@pytest.mark.parametrize("text", ["0d", "07d", "7", "d", "7 days", "7D", "1.5d", "-1d", "", "10000h", "7m"])
def test_malformed_lengths_say_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="number and a unit h, d or w"):
        parse_length(text)


@pytest.mark.parametrize("text", ["367d", "53w", "8785h"])
def test_lengths_over_a_year_and_a_day_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="at most 366d"):
        parse_length(text)


def test_whole_hours() -> None:
    assert is_whole_hour(datetime(2025, 3, 1, 12, tzinfo=UTC))
    assert not is_whole_hour(datetime(2025, 3, 1, 12, 0, 1, tzinfo=UTC))
    assert not is_whole_hour(datetime(2025, 3, 1, 12, 0, 0, 1, tzinfo=UTC))
    assert not is_whole_hour(datetime(2025, 3, 1, 12, 30, tzinfo=UTC))


def test_ceil_hour_rounds_up_to_the_next_whole_hour_in_utc() -> None:
    assert ceil_hour(datetime(2025, 3, 1, 12, tzinfo=UTC)) == datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert ceil_hour(datetime(2025, 3, 1, 12, 0, 0, 1, tzinfo=UTC)) == datetime(2025, 3, 1, 13, tzinfo=UTC)
    assert ceil_hour(datetime(2025, 3, 1, 23, 59, tzinfo=UTC)) == datetime(2025, 3, 2, 0, tzinfo=UTC)
    half_hour_zone = timezone(timedelta(hours=5, minutes=30))  # 17:00 there is 11:30 UTC
    moment = ceil_hour(datetime(2025, 3, 1, 17, 0, tzinfo=half_hour_zone))
    assert moment == datetime(2025, 3, 1, 12, tzinfo=UTC) and moment.tzinfo == UTC


def test_a_window_and_the_one_before() -> None:
    end = datetime(2025, 3, 8, tzinfo=UTC)
    window = window_ending(end, timedelta(days=7))
    assert window == Window(datetime(2025, 3, 1, tzinfo=UTC), end)
    assert window.length == timedelta(days=7)
    before = window.previous()
    assert before == Window(datetime(2025, 2, 22, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))
    assert before.length == window.length and before.end == window.start
    assert before.previous().end == before.start
