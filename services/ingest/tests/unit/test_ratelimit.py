"""The moving-window limiter: exact counts over any 60 s, O(1) per hit (pure, times handed in)."""

from __future__ import annotations

import pytest

from feedbackloop.http import ProblemError
from ingest.api.ratelimit import MovingWindow, RateLimits


def test_allows_limit_hits_in_any_window_then_says_when_the_next_is_allowed() -> None:
    window = MovingWindow(3, window=60)
    assert [window.hit("k", now=t) for t in (0.0, 10.0, 20.0)] == [0.0, 0.0, 0.0]
    assert window.hit("k", now=30.0) == pytest.approx(30.0)  # the hit at 0 leaves the window at 60
    assert window.hit("other", now=30.0) == 0.0  # keys are independent
    assert window.hit("k", now=60.0) == 0.0
    assert window.hit("k", now=65.0) == pytest.approx(5.0)  # refused hits are not counted
    assert window.hit("k", now=70.0) == 0.0


def test_over_the_limit_is_a_429_problem_with_retry_after() -> None:
    limits = RateLimits(per_source=1, per_key=2)
    limits.check_key("key-1")
    limits.check_key("key-1")
    limits.check_source("zendesk")
    with pytest.raises(ProblemError) as refused:
        limits.check_key("key-1")
    assert refused.value.status == 429 and 1 <= int(refused.value.headers["Retry-After"]) <= 60
    with pytest.raises(ProblemError):
        limits.check_source("zendesk")
