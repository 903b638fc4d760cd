"""Retry schedule, jitter, Retry-After and which failures retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from notification.domain.backoff import (
    DEFAULT_SCHEDULE,
    MAX_RETRY_AFTER,
    is_retryable,
    next_delay,
    parse_retry_after,
    parse_schedule,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_default_schedule() -> None:
    assert parse_schedule(DEFAULT_SCHEDULE) == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert parse_schedule(" 0, 0.2 ,0.2") == (0, 0.2, 0.2)


@pytest.mark.parametrize("text", ["", "0,,5", "0,five", "-1", "0,inf", "nan"])
def test_bad_schedules_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="retry schedule entry"):
        parse_schedule(text)


def test_next_delay_follows_the_schedule_until_spent() -> None:
    schedule = (0.0, 5.0, 300.0)
    middle = lambda: 0.5  # noqa: E731 - no jitter at the midpoint
    assert next_delay(schedule, 0, rand=middle) == 0
    assert next_delay(schedule, 1, rand=middle) == 5
    assert next_delay(schedule, 2, rand=middle) == 300
    assert next_delay(schedule, 3, rand=middle) is None


def test_jitter_spreads_within_bounds() -> None:
    assert next_delay((100.0,), 0, jitter=0.1, rand=lambda: 0.0) == pytest.approx(90)
    assert next_delay((100.0,), 0, jitter=0.1, rand=lambda: 0.999999) == pytest.approx(110, abs=1e-3)
    assert next_delay((100.0,), 0, jitter=0.0, rand=lambda: 0.0) == 100
    seen = {next_delay((100.0,), 0) for _ in range(50)}
    assert len(seen) > 1 and all(d is not None and 90 <= d <= 110 for d in seen)


def test_retry_after_wins_when_longer() -> None:
    assert next_delay((0.0, 5.0), 1, retry_after=60, rand=lambda: 0.5) == 60
    assert next_delay((0.0, 5.0), 1, retry_after=1, rand=lambda: 0.5) == 5
    assert next_delay((0.0, 5.0), 1, retry_after=10**9, rand=lambda: 0.5) == MAX_RETRY_AFTER
    assert next_delay((0.0, 5.0), 2, retry_after=60) is None, "Retry-After never extends a spent schedule"


def test_parse_retry_after() -> None:
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=90), usegmt=True), NOW) == 90
    assert parse_retry_after(format_datetime(NOW - timedelta(seconds=90), usegmt=True), NOW) == 0
    assert parse_retry_after("999999999", NOW) == MAX_RETRY_AFTER
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None


@pytest.mark.parametrize(("status", "retry"), [
    (None, True), (500, True), (502, True), (503, True), (599, True), (408, True), (429, True),
    (400, False), (401, False), (403, False), (404, False), (410, False), (422, False), (301, False),
])
def test_is_retryable(status: int | None, retry: bool) -> None:
    assert is_retryable(status) is retry
